"""Label sets derived from "<Type> <Sequence>" folder names (e.g. "Meningioma T1C+").

``folder``: one class per folder (44 on the public set); ``tumor_type``: the sequence dropped
(14 tumor types + normal); ``tumor_vs_normal``: two classes. A folder whose type starts with
"_NORMAL" or "NORMAL" (any case) is normal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from braintumor.constraints import Options, check
from braintumor.errors import DataError

TAXONOMIES = ("folder", "tumor_type", "tumor_vs_normal")
NORMAL, TUMOR = "normal", "tumor"
SEQUENCE = re.compile(r"(T1|T2|FLAIR|DWI|ADC|PD|SWI)\S*", re.IGNORECASE)
"""What counts as an MRI sequence name: T1, T1C+, T1CE, T2, T2*, FLAIR, DWI, ..."""


def check_taxonomy(taxonomy: str, taxonomies: Sequence[str] = TAXONOMIES) -> None:
    """Refuse a ``data.taxonomy`` that is not one of ``taxonomies``."""
    check("data", {"taxonomy": taxonomy}, {"taxonomy": Options(tuple(taxonomies))})


def parse_folder(name: str) -> tuple[str, str] | None:
    """``"Meningioma T1C+"`` -> ``("Meningioma", "T1C+")``; ``None`` without a sequence part."""
    tumor_type, _, sequence = name.strip().rpartition(" ")
    if not tumor_type.strip() or not SEQUENCE.fullmatch(sequence):
        return None
    return tumor_type.strip(), sequence


def is_normal(tumor_type: str) -> bool:
    return tumor_type.lstrip("_").upper().startswith("NORMAL")


def taxonomy_label(folder: str, taxonomy: str) -> str:
    """The label of class folder ``folder`` under ``taxonomy``."""
    if taxonomy == "folder":
        return folder
    parsed = parse_folder(folder)
    if parsed is None:
        raise DataError(
            f"class folder '{folder}' does not follow '<Type> <Sequence>' (e.g. 'Meningioma "
            f"T1C+'), so data.taxonomy={taxonomy} cannot derive its label. Use "
            "data.taxonomy=folder or rename the folder."
        )
    tumor_type = parsed[0]
    if taxonomy == "tumor_type":
        return tumor_type
    if taxonomy == "tumor_vs_normal":
        return NORMAL if is_normal(tumor_type) else TUMOR
    check_taxonomy(taxonomy)
    raise AssertionError(taxonomy)  # unreachable: every taxonomy is handled above


def label_map(folders: Sequence[str], taxonomy: str) -> dict[str, str]:
    """Folder name -> label for every folder; every offending folder is named at once."""
    check_taxonomy(taxonomy)
    if taxonomy != "folder":
        bad = [f for f in folders if parse_folder(f) is None]
        if bad:
            raise DataError(
                f"{len(bad)} class folder(s) do not follow '<Type> <Sequence>', so "
                f"data.taxonomy={taxonomy} cannot derive their labels: {bad}. Use "
                "data.taxonomy=folder or rename them."
            )
    return {f: taxonomy_label(f, taxonomy) for f in folders}


def tumor_types(class_names: Sequence[str]) -> list[str] | None:
    """The tumor type of each class, or ``None`` when some name has no sequence part."""
    parsed = [parse_folder(name) for name in class_names]
    if any(p is None for p in parsed):
        return None
    return [p[0] for p in parsed]  # type: ignore[index]
