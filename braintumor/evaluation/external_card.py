"""The model card's "External validation" section: every set the model was scored on that it
never saw (``reports/external/<source>/external_metrics.json``), one row each.

The section is rewritten whole from those files after every external scoring, before the
card's "Limitations", whose line "no external validation ... is reported" it then replaces.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from braintumor.atomic import write_atomically
from braintumor.evaluation.bootstrap import format_with_interval

HEADING = "## External validation"
NO_EXTERNAL = "- No external validation on a second dataset is reported here."
WITH_EXTERNAL = (
    "- External validation covers only the sets listed under External validation; other "
    "scanners, sites and sets may differ again."
)


def _value(metrics: dict[str, Any], name: str) -> str:
    value = metrics.get(name)
    if value is None:
        return "n/a"
    return format_with_interval(float(value), (metrics.get("ci95") or {}).get(name))


def external_section(reports: Path) -> str | None:
    """The section for the ``external/*/external_metrics.json`` under ``reports``, or ``None``
    when there is none."""
    files = sorted((reports / "external").glob("*/external_metrics.json"))
    if not files:
        return None
    lines = [
        HEADING,
        "",
        "Scored on every image of a set the model never saw, through the label maps, without "
        "the near-copies of its training images (docs/evidence.md). 95% intervals.",
        "",
        "| set | level | scored | out of label set | near-copies removed | accuracy | macro F1 "
        "| pointing game (chance) |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for file in files:
        m = json.loads(file.read_text())
        pointing = m.get("pointing_game") or {}
        game = (
            f"{pointing['pointing_game']:.3f} ({pointing['mask_share']:.3f})"
            if pointing.get("pointing_game") is not None
            else ""
        )
        lines.append(
            f"| {m.get('source', file.parent.name)} | {m.get('level', '')} | {m.get('n', 0)} | "
            f"{m.get('n_out_of_label_set', 0)} | {m.get('near_copies_removed', 'not checked')} | "
            f"{_value(m, 'accuracy')} | {_value(m, 'f1_macro')} | {game} |"
        )
    return "\n".join(lines) + "\n"


def add_external_section(card: Path, reports: Path) -> Path | None:
    """Rewrite ``card``'s External validation section from ``reports``; ``None`` (nothing
    written) when the card or the external reports do not exist."""
    section = external_section(reports)
    if section is None or not card.is_file():
        return None
    text = card.read_text()
    text = re.sub(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", "", text, flags=re.S | re.M)
    if "\n## Limitations" in text:
        text = text.replace("\n## Limitations", f"\n{section}\n## Limitations", 1)
    else:
        text = text.rstrip("\n") + f"\n\n{section}"
    return write_atomically(card, text.replace(NO_EXTERNAL, WITH_EXTERNAL))
