"""The single HTML page of the web app (no external assets: it works offline).

A result shows the uploaded scan beside its Grad-CAM (with the colour legend), a headline
worded by the calibrated confidence (:mod:`braintumor.inference.wording`), the top classes
as bars and the time the answer took. The model's identity, validation metrics and
out-of-distribution check are listed beside it. One column on a phone, two on a desktop.
"""

from __future__ import annotations

from html import escape
from typing import Any

from braintumor.vocabulary import shown_in

NOTICE = (
    "Research use only — not a medical device. Predictions and heatmaps are not a diagnosis "
    "and must not guide patient care."
)
METRIC_LABELS = {m.name: m.label for m in shown_in("page")}
# matplotlib's "jet", the colour map of the overlays (braintumor.inference.explain)
JET = "#00007f 0%, #0000ff 12.5%, #00ffff 37.5%, #ffff00 62.5%, #ff0000 87.5%, #7f0000 100%"

STYLE = """
 * { box-sizing: border-box; }
 body { font-family: system-ui, sans-serif; margin: 0; color: #1d2327; background: #f4f6f8; }
 main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
 h1 { font-size: 1.5rem; margin: .6rem 0 1rem; } h2 { font-size: 1.1rem; margin: 0 0 .7rem; }
 #notice { background: #fff3cd; border: 2px solid #b8860b; padding: .7rem; font-weight: 600;
           margin: 0 0 .5rem; }
 .layout { display: grid; grid-template-columns: minmax(0, 2fr) minmax(0, 1fr); gap: 1rem; }
 @media (max-width: 760px) { .layout { grid-template-columns: minmax(0, 1fr); } }
 .card { background: #fff; border: 1px solid #d6dbe0; border-radius: .5rem; padding: 1rem;
         margin-bottom: 1rem; min-width: 0; }
 form { display: flex; flex-wrap: wrap; gap: .6rem; align-items: center; }
 input[type=file] { max-width: 100%; }
 button { font-size: 1rem; padding: .45rem 1.2rem; background: #0b5cad; color: #fff;
          border: 0; border-radius: .3rem; cursor: pointer; }
 #error { background: #fde2e1; border: 2px solid #b00020; color: #7a0014; padding: .6rem 1rem; }
 #headline { font-size: 1.7rem; font-weight: 700; margin: 0 0 .2rem; overflow-wrap: anywhere; }
 #verdict { border-left: .45rem solid #1f7a3f; padding: .2rem 0 .2rem .8rem;
            margin-bottom: 1rem; }
 #verdict.moderate { border-color: #b07d00; }
 #verdict.low, #verdict.refer { border-color: #c05600; }
 #verdict.refused { border-color: #b00020; }
 #detail { margin: 0; color: #3c454d; }
 .pictures { display: grid; grid-template-columns: repeat(auto-fit, minmax(12rem, 20rem));
             gap: 1rem; margin-bottom: 1rem; }
 figure { margin: 0; } figure img { width: 100%; height: auto; display: block; background: #000;
          border-radius: .3rem; image-rendering: auto; }
 figcaption { font-size: .9rem; color: #3c454d; margin-top: .3rem; overflow-wrap: anywhere; }
 #legend { display: block; margin-top: .4rem; }
 #legend-bar { display: block; height: .8rem; border-radius: .2rem;
               background: linear-gradient(to right, {jet}); }
 .legend-labels { display: flex; justify-content: space-between; font-size: .8rem; }
 .bar { display: grid; grid-template-columns: minmax(6rem, 40%) 1fr 4.2rem; gap: .5rem;
        align-items: center; margin: .25rem 0; }
 .bar .name { overflow-wrap: anywhere; font-size: .95rem; }
 .bar .track { background: #e7ebef; border-radius: .2rem; height: 1rem; overflow: hidden; }
 .bar .fill { background: #0b5cad; height: 100%; }
 .bar .value { text-align: right; font-variant-numeric: tabular-nums; }
 #timing { color: #5a646d; font-size: .85rem; margin: .6rem 0 0; }
 table { border-collapse: collapse; width: 100%; } td, th { padding: .2rem .4rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; } th { white-space: nowrap; }
 tr:nth-child(even) { background: #f3f5f7; }
 .note { font-size: .85rem; color: #5a646d; }
 details summary { cursor: pointer; }
 #driving { display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .6rem; }
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>braintumor — MRI classifier</title>
<style>{style}</style>
</head>
<body data-max-bytes="{max_bytes}">
<main>
<p id="notice" role="note">{notice}</p>
<h1>Brain-tumor MRI classifier</h1>
<div class="layout">
<div>
 <section class="card" id="upload">
  <h2>Classify a scan</h2>
  <form id="form">
   <input type="file" id="file" accept="image/*,.tif,.tiff,.zip,.dcm,.nii,.gz" required>
   <label>Grad-CAM class <select id="target"><option value="">predicted class</option>
   {options}</select></label>
   <button type="submit" id="submit">Classify</button>
   <span class="note">one brain MRI slice, or a study (a .zip of DICOM files, a .dcm, a
   .nii.gz), at most {max_mb} MB</span>
  </form>
  {pacs}
  <p id="status" aria-live="polite"></p>
  <p id="error" role="alert" hidden></p>
 </section>
 <section class="card" id="result" hidden>
  <div id="verdict"><p id="headline"></p><p id="detail"></p>
   <p id="prediction-set" hidden></p></div>
  <div class="pictures">
   <figure id="scan-figure"><img id="scan" alt="the uploaded scan">
    <figcaption id="scan-caption"></figcaption></figure>
   <figure id="overlay-figure"><img id="overlay" alt="Grad-CAM heatmap over the scan">
    <figcaption><span id="overlay-caption"></span>
     <span id="legend"><span id="legend-bar"></span>
      <span class="legend-labels"><span>no evidence</span><span>strongest evidence</span></span>
     </span></figcaption></figure>
  </div>
  <div id="study" hidden><h2>The study's series</h2><table id="series"></table>
   <h2>The slices that drove the answer</h2><div id="driving"></div></div>
  <div id="probabilities"><h2>Probabilities (top {top}, {calibrated})</h2>
   <div id="bars"></div></div>
  <p id="timing"></p>
 </section>
</div>
<aside>
 <section class="card" id="model">
  <h2>The model</h2>
  <table id="identity">{identity}</table>
  {card}
 </section>
 <section class="card"><h2>Validation metrics of this model</h2>{metrics}</section>
 <section class="card"><h2>Unlike the training scans?</h2><p id="ood-check">{ood}</p></section>
</aside>
</div>
</main>
<script>
const $ = (id) => document.getElementById(id);
const form = $("form"), error = $("error"), status = $("status"), result = $("result");
const maxBytes = Number(document.body.dataset.maxBytes);
const percent = (p) => (100 * p).toFixed(1) + " %";
function fail(message) {{
  error.textContent = message; error.hidden = false; result.hidden = true; status.textContent = "";
}}
function bar(row) {{
  const line = document.createElement("div"); line.className = "bar";
  const name = document.createElement("span"); name.className = "name";
  name.textContent = row.class;
  const track = document.createElement("span"); track.className = "track";
  const fill = document.createElement("span"); fill.className = "fill";
  fill.style.width = (100 * row.probability).toFixed(1) + "%"; fill.style.display = "block";
  track.append(fill);
  const value = document.createElement("span"); value.className = "value";
  value.textContent = percent(row.probability);
  line.append(name, track, value);
  return line;
}}
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  const file = $("file").files[0];
  error.hidden = true;
  if (!file) return fail("Choose an image file first.");
  if (file.size > maxBytes)
    return fail(`"${{file.name}}" is ${{(file.size / 1e6).toFixed(1)}} MB: uploads are ` +
                `limited to ${{(maxBytes / 1e6).toFixed(1)}} MB.`);
  status.textContent = "Classifying…";
  const started = performance.now();
  let response;
  try {{
    response = await fetch("api/predict?target=" + encodeURIComponent($("target").value), {{
      method: "POST", body: file,
      headers: {{"Content-Type": "application/octet-stream",
                 "X-Filename": encodeURIComponent(file.name)}}}});
  }} catch (e) {{ return fail("The server did not answer: " + e); }}
  await render(response, started);
}});
async function render(response, started) {{
  const data = await response.json().catch(() => ({{error: "HTTP " + response.status}}));
  if (!response.ok) return fail(data.error || ("HTTP " + response.status));
  const total = (performance.now() - started) / 1000;
  const kind = {{"not an MRI scan": "refused", "uncertain - refer": "refer",
                "not an image of the kind this model was trained on": "refused"}}[data.confidence]
               || data.confidence;
  $("verdict").className = kind;
  $("headline").textContent = data.headline;
  $("detail").textContent = data.detail;
  const set = data.prediction_set;
  $("prediction-set").hidden = !set;
  $("prediction-set").textContent = set
    ? `Prediction set: ${{set.text}}, which holds the true class for ` +
      `${{Math.round(100 * set.level)}} % of validation-like ` +
      `${{data.kind === "study" ? "cases (patients)" : "scans"}}.` : "";
  const study = data.kind === "study";
  $("study").hidden = !study;
  $("scan-figure").hidden = study;
  if (study) {{
    $("overlay-figure").hidden = true;
    $("series").replaceChildren(...data.series.map((s) => {{
      const row = document.createElement("tr");
      for (const text of [s.series, `${{s.accepted}}/${{s.slices}} slices`,
                          s.class ? `${{s.class}} (${{percent(s.probability)}})` : "no answer"]) {{
        const cell = document.createElement("td"); cell.textContent = text; row.append(cell);
      }}
      return row;
    }}));
    $("driving").replaceChildren(...data.driving.map((d) => {{
      const figure = document.createElement("figure");
      const img = document.createElement("img"); img.src = d.gradcam || d.image;
      img.alt = `slice ${{d.slice}} of ${{d.series}}`;
      const caption = document.createElement("figcaption");
      caption.textContent = `${{d.series}}, slice ${{d.slice}}: ${{percent(d.probability)}}`;
      figure.append(img, caption);
      return figure;
    }}));
    $("probabilities").hidden = !(data.top && data.top.length);
    $("bars").replaceChildren(...(data.top || []).map(bar));
    $("timing").textContent = `Answered in ${{data.seconds.toFixed(2)}} s on the server.`;
    status.textContent = "";
    result.hidden = false;
    return;
  }}
  $("scan").src = data.image;
  $("scan-caption").textContent = `"${{data.file}}" (${{data.width}} x ${{data.height}} px)`;
  $("overlay-figure").hidden = !data.gradcam;
  if (data.gradcam) $("overlay").src = data.gradcam;
  $("overlay-caption").textContent = data.gradcam
    ? `Grad-CAM: where the evidence for "${{data.gradcam_class}}" lies.` : "";
  if (!data.gradcam && data.gradcam_note) $("scan-caption").textContent += " " + data.gradcam_note;
  $("probabilities").hidden = data.top.length === 0;
  $("bars").replaceChildren(...data.top.map(bar));
  $("timing").textContent = `Answered in ${{data.seconds.toFixed(2)}} s on the server ` +
    `(${{total.toFixed(2)}} s with the upload).`;
  status.textContent = "";
  result.hidden = false;
}}
const pacs = $("pacs-form");
if (pacs) pacs.addEventListener("submit", async (event) => {{
  event.preventDefault();
  error.hidden = true;
  status.textContent = "Fetching the study from the PACS and classifying it…";
  const started = performance.now();
  let response;
  try {{
    response = await fetch("api/pacs", {{method: "POST", body: JSON.stringify(
      {{study: $("pacs-uid").value.trim()}}), headers: {{"Content-Type": "application/json"}}}});
  }} catch (e) {{ return fail("The server did not answer: " + e); }}
  await render(response, started);
}});
</script>
</body>
</html>
"""


def metrics_table(metrics: dict[str, Any] | None, note: str = "") -> str:
    """The validation metrics as an HTML table with ``note`` (their source) below it; without
    metrics, ``note`` says why there are none."""
    if not metrics:
        why = note or "No validation metrics found (reports/val_metrics.json)."
        return f'<p id="metrics">{escape(why[:1].upper() + why[1:])}</p>'
    caption = f'<p id="metrics-note" class="note">{escape(note)}</p>' if note else ""
    rows = []
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            value = metrics[key]
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            rows.append(f"<tr><td>{escape(label)}</td><td>{escape(text)}</td></tr>")
    return f'<table id="metrics">{"".join(rows)}</table>{caption}'


def identity_rows(info: dict[str, Any]) -> str:
    """The model's identity as table rows: run, file, epoch, date, classes, input."""
    ident = info.get("identity") or {}
    names = info["class_names"]
    classes = (
        f"<details><summary>{len(names)} classes</summary>{escape(', '.join(names))}</details>"
    )
    epoch = ident.get("epoch")
    rows = [
        ("run", escape(str(ident.get("run") or "not in a run folder"))),
        ("model file", f"<code id=\"model-name\">{escape(info['model'])}</code> "
                       f"({escape(info['backend'])})"),
        ("epoch", escape(f"{epoch} (counted from 0; step {ident.get('step')})"
                         if epoch is not None else "unknown")),
        ("saved", escape(str(ident.get("saved") or "unknown"))),
        ("classes", classes),
        ("input", escape(f"{info['image_size']} x {info['image_size']} px, "
                         f"{info['channels']} channel(s)")),
        ("calibration", escape(info.get("calibration_note") or "none")),
    ]  # fmt: skip
    return "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)


def ood_sentence(stats: dict[str, Any] | None) -> str:
    """What the out-of-distribution check does for this model, in a sentence."""
    if not stats:
        return (
            "This model has no out-of-distribution check (it was evaluated before the check "
            "existed, or with eval.ood=null): any image gets a class. Evaluate it again to add "
            "one."
        )
    return (
        f"Blank images, colour pictures and images unlike the "
        f"{stats.get('reference_scans')} training scans it was fitted on are refused instead "
        f"of classified. It accepts {100 * stats.get('acceptance', 0):.0f}% of MRI scans like "
        f"the training data ({100 * stats.get('validation_accepted', 0):.0f}% of the "
        f"{stats.get('validation_scans')} validation scans)."
    )


PACS_FORM = """<form id="pacs-form"><label>Study from the PACS
   <input id="pacs-uid" placeholder="StudyInstanceUID" pattern="[0-9.]+" maxlength="64" required>
   </label><button type="submit" id="pacs-submit">Fetch and classify</button></form>"""


def render_page(info: dict[str, Any], max_bytes: int, top: int = 5, pacs: bool = False) -> str:
    """The page for a loaded model (``info``: what
    :meth:`~braintumor.inference.web.backend.PageBackend.info` gives)."""
    options = "".join(
        f'<option value="{escape(n)}">{escape(n)}</option>' for n in info["class_names"]
    )
    return PAGE.format(
        style=STYLE.replace("{jet}", JET),
        notice=escape(NOTICE),
        identity=identity_rows(info),
        metrics=metrics_table(info["validation_metrics"], info.get("validation_metrics_note", "")),
        ood=escape(ood_sentence(info.get("ood"))),
        card='<p><a href="model-card" target="_blank">Model card</a>: what the model was '
        "trained and tested on, how well and how sure it is, and its limits.</p>"
        if info.get("model_card")
        else '<p class="note">No model card was written for this model.</p>',
        options=options,
        max_bytes=max_bytes,
        max_mb=f"{max_bytes / 1e6:g}",
        top=min(top, len(info["class_names"])),
        calibrated="calibrated" if info.get("calibrated") else "not calibrated",
        pacs=PACS_FORM if pacs else "",
    )
