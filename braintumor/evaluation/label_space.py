"""The label space a model and an external set share, through the taxonomy's families.

A model's classes and an external set's labels are both mapped to a family (glioma,
meningioma, pituitary, other_tumor, normal; or ``tumor`` when a set says "tumour" without
which). They are compared at the finest *level* both sides can express: ``family`` when every
label on both sides has a family, else ``tumor_vs_normal`` (every tumour family -> ``tumor``).

- The model's probability of a shared label is the sum of its classes' probabilities.
- External images whose label the model lacks are *out of its label set*: counted and shown
  with what the model answered, never scored as right or wrong.
- Labels the model has and the set lacks stay possible answers (and are wrong when chosen).
- When the two share no label, or the model has a single label at that level (every answer
  would be right), scoring is refused rather than guessed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from braintumor.data.label_maps import (
    FAMILIES,
    LABEL_MAP_DIR,
    SEQUENCES,
    UNSPECIFIED_TUMOR,
    load_label_map,
    normal_form,
)
from braintumor.data.taxonomy import NORMAL, TUMOR, parse_folder
from braintumor.errors import DataError

LEVELS = ("family", "tumor_vs_normal")
OUT_OF_LABEL_SET = "out of its label set"


def at_level(family: str, level: str) -> str:
    """A family at ``level``: itself, or ``tumor``/``normal``."""
    if level == "family":
        return family
    return NORMAL if family == NORMAL else TUMOR


@dataclass(frozen=True)
class SharedLabels:
    """How a model's classes and an external set's labels meet.

    ``labels``: the report's classes: the shared labels first (scored), then the labels only
    the model has (``model_only``: possible answers, never true). ``model_label``: each model
    class's label at ``level``. ``external_label``: each external source label -> its label at
    ``level``, or :data:`OUT_OF_LABEL_SET`.
    """

    level: str
    labels: tuple[str, ...]
    n_shared: int
    model_label: tuple[str, ...]
    external_label: Mapping[str, str]

    @property
    def shared(self) -> tuple[str, ...]:
        return self.labels[: self.n_shared]

    @property
    def model_only(self) -> tuple[str, ...]:
        return self.labels[self.n_shared :]

    @property
    def out_of_set(self) -> list[str]:
        """The external source labels the model lacks."""
        return sorted(k for k, v in self.external_label.items() if v == OUT_OF_LABEL_SET)

    def probabilities(self, probs: np.ndarray) -> np.ndarray:
        """``(N, model classes)`` -> ``(N, len(labels))``: each label's classes summed."""
        probs = np.asarray(probs, dtype=np.float64)
        index = {label: i for i, label in enumerate(self.labels)}
        out = np.zeros((len(probs), len(self.labels)))
        for k, label in enumerate(self.model_label):
            out[:, index[label]] += probs[:, k]
        return out


def _order(labels: set[str]) -> list[str]:
    rank = {name: i for i, name in enumerate((*FAMILIES, UNSPECIFIED_TUMOR, TUMOR))}
    return sorted(labels, key=lambda name: (rank.get(name, len(rank)), name))


def shared_labels(
    model_families: Sequence[str],
    external_families: Mapping[str, str],
    model_name: str = "the model",
    external_name: str = "the external set",
) -> SharedLabels:
    """Meet ``model_families`` (the family of each model class, in class order) and
    ``external_families`` (external source label -> family) at the finest common level."""
    everything = set(model_families) | set(external_families.values())
    level = "family" if UNSPECIFIED_TUMOR not in everything else "tumor_vs_normal"
    model_label = tuple(at_level(f, level) for f in model_families)
    ext_level = {label: at_level(f, level) for label, f in external_families.items()}
    model_set, ext_set = set(model_label), set(ext_level.values())
    shared = _order(model_set & ext_set)
    if not shared:
        raise DataError(
            f"{model_name} and {external_name} share no label at the {level} level (the model: "
            f"{_order(model_set)}; the set: {_order(ext_set)}): there is nothing to score. "
            "Score the model on a set holding some of its classes, or fix the label map "
            "(data.label_map=...)."
        )
    if len(model_set) < 2:
        raise DataError(
            f"{model_name} has a single label at the {level} level ({_order(model_set)}): every "
            f"answer on {external_name} would be right, so scoring it means nothing."
        )
    labels = (*shared, *_order(model_set - ext_set))
    external_label = {k: v if v in model_set else OUT_OF_LABEL_SET for k, v in ext_level.items()}
    return SharedLabels(level, labels, len(shared), model_label, external_label)


def model_families(
    class_names: Sequence[str], sources: Sequence[str] = (), label_map: str | None = None
) -> list[str]:
    """The family of each class of a model, from its names and the label maps of the
    ``sources`` it was trained on (every public set's map when none is known).

    A class is a family (``glioma``; ``data.taxonomy=family``), a family with a sequence
    (``glioma T1C+``, ``normal unknown``; ``family_sequence``), ``tumor``/``normal``
    (``tumor_vs_normal``), a source label (``notumor``, ``Astrocitoma T1``) or a tumour type
    of one (``Astrocitoma``, the ``tumor_type`` taxonomy). One that is none of these, or that
    two maps place in different families, is refused with its name.
    """
    names = list(sources) or sorted(p.stem for p in LABEL_MAP_DIR.glob("*.yaml"))
    maps = {source: load_label_map(source, label_map) for source in names}
    by_label: dict[str, set[str]] = {}
    for mapping in maps.values():
        for label, (family, _) in mapping.items():
            by_label.setdefault(label, set()).add(family)
            parsed = parse_folder(label)
            if parsed is not None:  # the tumor_type taxonomy names the type alone
                by_label.setdefault(normal_form(parsed[0]), set()).add(family)
    known = (*FAMILIES, UNSPECIFIED_TUMOR, TUMOR)
    families, problems = [], []
    for name in class_names:
        key = normal_form(name)
        family, _, sequence = key.rpartition(" ")  # family_sequence: "glioma T1C+"
        if key in known:
            found = {key}
        elif family in known and sequence in SEQUENCES:
            found = {family}
        else:
            found = by_label.get(key, set())
        if len(found) != 1:
            why = "is in no label map" if not found else f"has families {sorted(found)}"
            problems.append(f"'{name}' {why}")
            continue
        families.append(found.pop())
    if problems:
        raise DataError(
            f"cannot place the model's class(es) in the taxonomy: {'; '.join(problems)} (maps "
            f"of {names}). Pass a label map that holds them: data.label_map=/path/to/map.yaml."
        )
    return families
