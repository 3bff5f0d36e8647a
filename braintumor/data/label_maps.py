"""One taxonomy over every public set: each source label -> (family, sequence).

Each set's map is ``conf/data/labels/<source>.yaml``; a user file (``data.label_map``, YAML of
the same form or a CSV ``source_label,family,sequence``) overrides it line by line. A YAML map
writes labels out (``labels: {notumor: [normal, unknown]}``) or, for ``<Type> <Sequence>``
folders, each type once (``types: {Astrocitoma: glioma}`` with ``sequences: [T1, T1C+, T2]``).

Families are :data:`FAMILIES`, plus ``tumor`` for a set that says "tumour" without its family
(Br35H's ``yes``): such a label has a class under ``tumor_vs_normal`` but not under ``family``.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from braintumor.data.taxonomy import NORMAL, TUMOR, check_taxonomy, parse_folder
from braintumor.data.taxonomy import TAXONOMIES as FOLDER_TAXONOMIES
from braintumor.data.taxonomy import label_map as folder_label_map
from braintumor.errors import DataError

FAMILIES = ("glioma", "meningioma", "pituitary", "other_tumor", "normal")
SEQUENCES = ("T1", "T1C+", "T2", "unknown")
UNSPECIFIED_TUMOR = "tumor"
"""The family of a label that says "tumour" but not which (not one of :data:`FAMILIES`)."""

LABEL_MAP_DIR = Path(__file__).resolve().parents[2] / "conf" / "data" / "labels"
"""The maps of the public sets, beside the other data configs (``conf/data/labels``)."""

LabelMap = dict[str, tuple[str, str]]


def normal_form(label: str) -> str:
    """Labels compare in Unicode NFC, stripped (zips from macOS store 'Lesões' decomposed)."""
    return unicodedata.normalize("NFC", label).strip()


def default_map_file(source: str) -> Path:
    return LABEL_MAP_DIR / f"{source}.yaml"


def label_map_files(source: str, path: str | Path | None = None) -> list[Path]:
    """The files that make ``source``'s map: its default (when there is one), then ``path``."""
    files = [default_map_file(source)] if source and default_map_file(source).is_file() else []
    return files + ([Path(path)] if path else [])


def _check_entry(label: str, family: str, sequence: str, file: Path) -> tuple[str, str]:
    family, sequence = str(family).strip(), str(sequence).strip()
    if family not in (*FAMILIES, UNSPECIFIED_TUMOR):
        raise DataError(
            f"label map '{file}' maps '{label}' to family '{family}'; families are "
            f"{list(FAMILIES)} (or '{UNSPECIFIED_TUMOR}' for a tumour of unknown family)."
        )
    if sequence not in SEQUENCES:
        raise DataError(
            f"label map '{file}' maps '{label}' to sequence '{sequence}'; sequences are "
            f"{list(SEQUENCES)}."
        )
    return family, sequence


def _read_csv(file: Path) -> LabelMap:
    with file.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        wanted = {"source_label", "family", "sequence"}
        if not wanted <= set(reader.fieldnames or []):
            raise DataError(
                f"label map '{file}' needs the header 'source_label,family,sequence', "
                f"found {reader.fieldnames}."
            )
        return {
            normal_form(row["source_label"]): _check_entry(
                row["source_label"], row["family"], row["sequence"], file
            )
            for row in reader
        }


def _read_yaml(file: Path) -> LabelMap:
    try:
        raw = OmegaConf.to_container(OmegaConf.load(file))
    except Exception as error:  # YAML syntax errors come in many types
        raise DataError(f"label map '{file}' is not valid YAML: {error}") from None
    if not isinstance(raw, dict) or not ({"labels", "types"} & set(raw)):
        raise DataError(
            f"label map '{file}' needs 'labels: {{source_label: [family, sequence]}}' or "
            "'types: {Type: family}' with 'sequences: [T1, ...]'."
        )
    found: LabelMap = {}
    for tumor_type, family in (raw.get("types") or {}).items():
        for sequence in raw.get("sequences") or []:
            label = f"{normal_form(str(tumor_type))} {sequence}"
            found[label] = _check_entry(label, family, sequence, file)
    for label, entry in (raw.get("labels") or {}).items():
        if not isinstance(entry, list) or len(entry) != 2:
            raise DataError(
                f"label map '{file}': '{label}' must map to [family, sequence], got {entry!r}."
            )
        found[normal_form(str(label))] = _check_entry(str(label), *entry, file)
    return found


def read_label_map(file: str | Path) -> LabelMap:
    """One map file (``.yaml``/``.yml`` or ``.csv``)."""
    file = Path(file)
    if not file.is_file():
        raise DataError(f"label map '{file}' does not exist (data.label_map).")
    return _read_csv(file) if file.suffix.lower() == ".csv" else _read_yaml(file)


def load_label_map(source: str, path: str | None = None) -> LabelMap:
    """``source``'s labels -> ``(family, sequence)``: its default map overridden by ``path``.

    Raises :class:`DataError` when neither exists, or when an entry names an unknown family
    or sequence.
    """
    files = label_map_files(source, path)
    if not files:
        raise DataError(
            f"no label map for source '{source}': there is no '{default_map_file(source)}'. "
            "Write one (YAML or CSV source_label,family,sequence) and pass it as "
            "data.label_map=/path/to/map."
        )
    merged: LabelMap = {}
    for file in files:
        merged.update(read_label_map(file))
    return merged


def _type_key(tumor_type: str) -> str:
    """``"Glioma (Astrocitoma, ...)"`` -> ``"glioma"``: what a type is matched on loosely."""
    return normal_form(tumor_type).split(" (")[0].strip().casefold()


def map_labels(
    source: str, labels: list[str], path: str | Path | None = None
) -> dict[str, tuple[str, str]]:
    """``(family, sequence)`` of every label of ``source``; stops naming every label the map
    lacks and the map file(s). A ``<Type (details)> <Sequence>`` folder whose exact name is
    missing matches a map type with the same name before the parenthesis."""
    mapping = load_label_map(source, str(path) if path else None)
    loose = {
        (_type_key(parsed[0]), parsed[1]): value
        for key, value in mapping.items()
        if (parsed := parse_folder(key)) is not None
    }
    result, missing = {}, []
    for label in labels:
        key = normal_form(label)
        parsed = parse_folder(key)
        if key in mapping:
            result[label] = mapping[key]
        elif parsed is not None and (_type_key(parsed[0]), parsed[1]) in loose:
            result[label] = loose[(_type_key(parsed[0]), parsed[1])]
        else:
            missing.append(label)
    if missing:
        files = " + ".join(f"'{f}'" for f in label_map_files(source, path))
        raise DataError(
            f"source '{source}' has label(s) {missing} that its label map {files} lacks. Add "
            "them (label: [family, sequence]) to a map of your own and pass it as "
            "data.label_map=/path/to/map.yaml (or a CSV source_label,family,sequence)."
        )
    return result


FAMILY_TAXONOMIES = ("family", "family_sequence")
TAXONOMIES = (*FOLDER_TAXONOMIES, *FAMILY_TAXONOMIES)


def has_label_map(source: str, path: str | Path | None = None) -> bool:
    return bool(label_map_files(source, path))


def classes_of(
    source: str, labels: Sequence[str], taxonomy: str, path: str | Path | None = None
) -> dict[str, str]:
    """Each source label -> its class under ``taxonomy``.

    ``folder`` and ``tumor_type`` read the labels themselves (:mod:`~braintumor.data.taxonomy`);
    ``family`` and ``family_sequence`` (``"glioma T1C+"``) go through the source's label map, and
    so does ``tumor_vs_normal`` when the source has one (Br35H's ``yes``/``no`` has no
    ``<Type> <Sequence>`` to read).
    """
    check_taxonomy(taxonomy, TAXONOMIES)
    if taxonomy == "folder" or taxonomy == "tumor_type":
        return folder_label_map(labels, taxonomy)
    if taxonomy == "tumor_vs_normal" and not has_label_map(source, path):
        return folder_label_map(labels, taxonomy)
    if taxonomy in FAMILY_TAXONOMIES and not has_label_map(source, path):
        raise DataError(
            f"data.taxonomy={taxonomy} maps each label to a family through a label map, and "
            f"{'these class folders' if not source else f'source {source!r}'} have none. Write "
            "one (label: [family, sequence], or a CSV source_label,family,sequence) and pass it "
            "as data.label_map=/path/to/map.yaml."
        )
    mapped = map_labels(source, list(labels), path)
    if taxonomy == "tumor_vs_normal":
        return {label: NORMAL if fam == "normal" else TUMOR for label, (fam, _) in mapped.items()}
    vague = [label for label, (fam, _) in mapped.items() if fam == UNSPECIFIED_TUMOR]
    if vague:
        raise DataError(
            f"source '{source}' label(s) {vague} say 'tumour' without its family, so "
            f"data.taxonomy={taxonomy} has no class for them. Use data.taxonomy=tumor_vs_normal, "
            "or leave this source out."
        )
    if taxonomy == "family":
        return {label: fam for label, (fam, _) in mapped.items()}
    return {label: f"{fam} {seq}" for label, (fam, seq) in mapped.items()}


def sequences_of(
    source: str, labels: Sequence[str], path: str | Path | None = None
) -> dict[str, str]:
    """Each label's MRI sequence: from the source's label map when it has one (figshare's
    ``glioma`` is ``T1C+``), else from a ``<Type> <Sequence>`` name, else ``unknown``."""
    if has_label_map(source, path):
        try:
            mapped = map_labels(source, list(labels), path)
            return {label: sequence for label, (_, sequence) in mapped.items()}
        except DataError:  # a label the map lacks (data.taxonomy=folder needs no map)
            pass
    return {label: (p[1] if (p := parse_folder(label)) else "unknown") for label in labels}
