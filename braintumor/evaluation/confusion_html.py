"""An interactive confusion matrix in one self-contained HTML file (inline SVG and script, no
network): hovering a cell shows the true and predicted class, the count, the share of the row
and example file names."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import LogNorm, to_hex

from braintumor.evaluation.confusion import CELL_COLORS, row_rates

EXAMPLES_PER_CELL = 5

_STYLE = """
body{font:14px system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px}
p.note{color:#555;margin:0 0 12px}
#wrap{display:flex;gap:16px;align-items:flex-start;flex-wrap:wrap}
svg text{font:12px system-ui,sans-serif;fill:#222}
svg text.n{fill:#000;pointer-events:none}
svg text.n.dark{fill:#fff}
svg rect.c{stroke:#e6e6e6;stroke-width:1}
svg rect.c:hover{stroke:#d62728;stroke-width:2}
svg rect.few{stroke-dasharray:3 2}
#info{min-width:280px;max-width:420px;border:1px solid #ccc;border-radius:6px;padding:10px;
position:sticky;top:8px;background:#fafafa}
#info ul{margin:4px 0 0;padding-left:18px;word-break:break-all}
"""

_SCRIPT = """
const data = JSON.parse(document.getElementById('confusion-data').textContent);
const info = document.getElementById('info');
function show(i, j) {
  const c = data.counts[i][j], s = data.support[i];
  const share = s ? (100 * c / s).toFixed(1) + '% of ' + s + ' images' : 'no images';
  const files = data.examples[i + ',' + j] || [];
  let text = '<b>true:</b> ' + esc(data.classes[i]) + '<br><b>predicted:</b> ' +
    esc(data.classes[j]) + '<br><b>count:</b> ' + c + ' (' + share + ')';
  if (s && s < data.min_support) text += '<br><i>few images: the share is unreliable</i>';
  if (files.length) text += '<br><b>examples:</b><ul>' +
    files.map(f => '<li>' + esc(f) + '</li>').join('') + '</ul>';
  info.innerHTML = text;
}
function esc(t) {
  return String(t).replace(/[&<>"]/g, ch => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[ch]));
}
document.querySelector('svg').addEventListener('mouseover', e => {
  const r = e.target.closest('rect.c');
  if (r) show(+r.dataset.i, +r.dataset.j);
});
"""


def cell_examples(
    y_true: np.ndarray, y_pred: np.ndarray, paths: Sequence[str], per_cell: int = EXAMPLES_PER_CELL
) -> dict[tuple[int, int], list[str]]:
    """The first ``per_cell`` file paths of each (true, predicted) cell."""
    examples: dict[tuple[int, int], list[str]] = {}
    for t, p, path in zip(np.asarray(y_true), np.asarray(y_pred), paths, strict=True):
        cell = examples.setdefault((int(t), int(p)), [])
        if len(cell) < per_cell:
            cell.append(str(path))
    return examples


def confusion_html(
    counts: np.ndarray,
    class_names: Sequence[str],
    examples: Mapping[tuple[int, int], Sequence[str]] | None = None,
    title: str = "confusion matrix",
    *,
    min_support: int,
) -> str:
    """The page of ``counts`` (rows: true, columns: predicted): the colours and numbers of the
    PNG's counts panel, the support per row, and on hover the cell's details."""
    n = len(class_names)
    support = counts.sum(axis=1)
    rates = row_rates(counts)
    cell = 22 if n > 20 else 34
    longest = max((len(str(c)) for c in class_names), default=1)
    margin = int(longest * 7.2) + 16
    norm = LogNorm(vmin=1, vmax=max(int(counts.max()), 2))
    side = n * cell
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{margin + side + 60}" '
        f'height="{margin + side + 10}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{margin + side / 2}" y="12" text-anchor="middle">predicted</text>',
        f'<text x="{margin + side + 8}" y="{margin - 6}">support</text>',
    ]
    for k, name in enumerate(class_names):
        label = html.escape(str(name))
        y = margin + k * cell + cell / 2 + 4
        x = margin + k * cell + cell / 2 + 4
        parts.append(f'<text x="{margin - 6}" y="{y}" text-anchor="end">{label}</text>')
        parts.append(f'<text transform="translate({x},{margin - 6}) rotate(-90)">{label}</text>')
        parts.append(f'<text x="{margin + side + 8}" y="{y}">{support[k]}</text>')
    for i in range(n):
        few = " few" if support[i] < min_support else ""
        for j in range(n):
            c = int(counts[i, j])
            colour = to_hex(CELL_COLORS(norm(c))) if c else "#ffffff"
            x, y = margin + j * cell, margin + i * cell
            tip = (f"true: {class_names[i]} | predicted: {class_names[j]} | count: {c} "
                   f"({rates[i, j]:.0%} of {support[i]})")  # fmt: skip
            parts.append(
                f'<rect class="c{few}" data-i="{i}" data-j="{j}" x="{x}" y="{y}" width="{cell}" '
                f'height="{cell}" fill="{colour}"><title>{html.escape(tip)}</title></rect>'
            )
            if c:
                dark = " dark" if norm(c) > 0.6 else ""
                parts.append(f'<text class="n{dark}" x="{x + cell / 2}" y="{y + cell / 2 + 4}" '
                             f'text-anchor="middle">{c}</text>')  # fmt: skip
    parts.append("</svg>")
    payload = {
        "classes": [str(c) for c in class_names],
        "counts": counts.astype(int).tolist(),
        "support": support.astype(int).tolist(),
        "min_support": min_support,
        "examples": {f"{i},{j}": list(v) for (i, j), v in (examples or {}).items()},
    }
    blob = json.dumps(payload).replace("</", "<\\/")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f'<h1>{html.escape(title)}</h1><p class="note">Rows: true class; columns: predicted '
        f"class; colour: images on a log scale (white: none). Dashed rows hold fewer than "
        f'{min_support} images. Hover a cell for its images.</p><div id="wrap">'
        + "".join(parts)
        + '<div id="info">Hover a cell.</div></div>'
        f'<script type="application/json" id="confusion-data">{blob}</script>'
        f"<script>{_SCRIPT}</script></body></html>\n"
    )
