"""The single HTML page of the web app (no external assets: it works offline)."""

from __future__ import annotations

from html import escape
from typing import Any

NOTICE = (
    "Research use only — not a medical device. Predictions and heatmaps are not a diagnosis "
    "and must not guide patient care."
)
METRIC_LABELS = {
    "accuracy": "accuracy",
    "f1_macro": "macro F1",
    "precision_macro": "macro precision",
    "recall_macro": "macro recall",
    "ece": "calibration error (ECE)",
    "n": "validation scans",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>braintumor — MRI classifier</title>
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 1rem auto; }}
 #notice {{ background: #fff3cd; border: 2px solid #b8860b; padding: .7rem; font-weight: 600; }}
 #error {{ background: #fde2e1; border: 2px solid #b00020; color: #7a0014; padding: .6rem 1rem; }}
 table {{ border-collapse: collapse; }} td, th {{ padding: .2rem .8rem; text-align: left; }}
 tr:nth-child(even) {{ background: #f3f3f3; }}
 .cols {{ display: flex; gap: 2rem; flex-wrap: wrap; }} img {{ max-width: 24rem; }}
 #top-class {{ font-size: 1.4rem; font-weight: 700; }} #overlay {{ width: 20rem; }}
</style>
</head>
<body data-max-bytes="{max_bytes}">
<p id="notice" role="note">{notice}</p>
<h1>Brain-tumor MRI classifier</h1>
<p>Model: <code id="model-name">{model}</code> ({backend}, {num_classes} classes,
 {image_size} px, {channels} channel(s)).</p>
<h2>Validation metrics of this model</h2>
{metrics}
{card}
<h2>Classify a scan</h2>
<form id="form">
 <input type="file" id="file" accept="image/*" required>
 <label>Grad-CAM class <select id="target"><option value="">predicted class</option>
 {options}</select></label>
 <button type="submit" id="submit">Classify</button>
 <span>(at most {max_mb} MB)</span>
</form>
<p id="status" aria-live="polite"></p>
<p id="error" role="alert" hidden></p>
<div id="result" hidden>
 <p>Top class: <span id="top-class"></span> (<span id="top-probability"></span>)</p>
 <div class="cols">
  <table id="top5"><thead><tr><th>class</th><th>probability</th></tr></thead><tbody></tbody>
  </table>
  <figure><img id="overlay" alt="Grad-CAM overlay">
   <figcaption id="overlay-caption"></figcaption></figure>
 </div>
</div>
<script>
const form = document.getElementById("form"), error = document.getElementById("error");
const status = document.getElementById("status"), result = document.getElementById("result");
const maxBytes = Number(document.body.dataset.maxBytes);
function fail(message) {{
  error.textContent = message; error.hidden = false; result.hidden = true; status.textContent = "";
}}
form.addEventListener("submit", async (event) => {{
  event.preventDefault();
  const file = document.getElementById("file").files[0];
  error.hidden = true;
  if (!file) return fail("Choose an image file first.");
  if (file.size > maxBytes)
    return fail(`"${{file.name}}" is ${{(file.size / 1e6).toFixed(1)}} MB: uploads are ` +
                `limited to ${{(maxBytes / 1e6).toFixed(1)}} MB.`);
  status.textContent = "Classifying…";
  const target = document.getElementById("target").value;
  let response;
  try {{
    response = await fetch("api/predict?target=" + encodeURIComponent(target), {{
      method: "POST", body: file,
      headers: {{"Content-Type": "application/octet-stream",
                 "X-Filename": encodeURIComponent(file.name)}}}});
  }} catch (e) {{ return fail("The server did not answer: " + e); }}
  const data = await response.json().catch(() => ({{error: "HTTP " + response.status}}));
  if (!response.ok) return fail(data.error || ("HTTP " + response.status));
  const body = document.querySelector("#top5 tbody");
  body.replaceChildren(...data.top.map((row) => {{
    const tr = document.createElement("tr");
    for (const text of [row.class, (100 * row.probability).toFixed(1) + " %"]) {{
      const td = document.createElement("td"); td.textContent = text; tr.append(td);
    }}
    return tr;
  }}));
  document.getElementById("top-class").textContent = data.abstain
    ? `uncertain - refer (best guess: ${{data.top[0].class}}, below the threshold `
      + `${{(100 * data.threshold).toFixed(1)}} %)` : data.top[0].class;
  document.getElementById("top-probability").textContent =
    (100 * data.top[0].probability).toFixed(1) + " %";
  const overlay = document.getElementById("overlay");
  overlay.hidden = !data.gradcam;
  if (data.gradcam) overlay.src = data.gradcam;
  document.getElementById("overlay-caption").textContent = data.gradcam
    ? `Grad-CAM: evidence for "${{data.gradcam_class}}"` : data.gradcam_note;
  status.textContent = `"${{data.file}}": done.`;
  result.hidden = false;
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
    caption = f'<p id="metrics-note">{escape(note)}</p>' if note else ""
    rows = []
    for key, label in METRIC_LABELS.items():
        if key in metrics:
            value = metrics[key]
            text = f"{value:.3f}" if isinstance(value, float) else str(value)
            rows.append(f"<tr><td>{escape(label)}</td><td>{escape(text)}</td></tr>")
    return f'<table id="metrics">{"".join(rows)}</table>{caption}'


def render_page(info: dict[str, Any], max_bytes: int) -> str:
    """The page for a loaded model (``info`` as :meth:`~braintumor.inference.app.Classifier.info`
    gives it)."""
    options = "".join(
        f'<option value="{escape(n)}">{escape(n)}</option>' for n in info["class_names"]
    )
    return PAGE.format(
        notice=escape(NOTICE),
        model=escape(info["model"]),
        backend=escape(info["backend"]),
        num_classes=len(info["class_names"]),
        image_size=info["image_size"],
        channels=info["channels"],
        metrics=metrics_table(info["validation_metrics"], info.get("validation_metrics_note", "")),
        card='<p><a href="model-card" target="_blank">Model card</a>: what the model was '
        "trained and tested on, how well and how sure it is, and its limits.</p>"
        if info.get("model_card")
        else "<p>No model card was written for this model.</p>",
        options=options,
        max_bytes=max_bytes,
        max_mb=f"{max_bytes / 1e6:g}",
    )
