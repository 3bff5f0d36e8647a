"""A hard synthetic benchmark: virtual patients, several slices each, 44 classes.

The demo set (:mod:`braintumor.data.synthetic`) draws every scan independently, so any split
of it is fair. Real sets are not like that: the public 44-class set holds several slices of
each patient, and a patient's T1, T1C+ and T2 series land in three different classes. Here
each virtual patient has one tumor type (or none), one head and one lesion, and is scanned
in every sequence of its type; each series holds ``slices`` slices at different heights (the
lesion's cross-section shrinks away from its centre), with a small pose change and fresh
acquisition noise. Lesions are dimmer than the demo's (``lesion_contrast``), so classes differ
subtly, and each patient's tissue intensities and head pose vary (``tissue_jitter``,
``pose_spread``), as scanners and positioning do. A random split puts slices of one patient
on both sides and leaks; the group file ``groups.csv`` (``path,group``) keeps each patient in
one split::

    python -m braintumor synthetic data/hard44 --patients 12 --slices 8
    python train.py data=folder data.root=data/hard44 data.group_file=data/hard44/groups.csv

Every slice is seeded from ``(seed, tumor type, patient, sequence, slice)``: the set is the
same on every machine.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.console import progress_bar
from braintumor.data.synthetic import (
    CLASS_CATALOGUE,
    SliceOf,
    class_names_for,
    publish_generated,
    render_scan,
    split_class_name,
)

GENERATOR_VERSION = 1
MANIFEST_NAME = ".virtual_patients.json"
GROUP_FILE = "groups.csv"


def patient_types(num_classes: int) -> dict[str, list[str]]:
    """``{tumor type: its classes}`` for the first ``num_classes`` classes of the catalogue."""
    types: dict[str, list[str]] = {}
    for name in class_names_for(num_classes):
        tumor, _ = split_class_name(name)
        types.setdefault(tumor, []).append(name)
    return types


def write_patient_dataset(
    out_dir: str | Path,
    num_classes: int = len(CLASS_CATALOGUE),
    patients: int = 12,
    slices: int = 8,
    seed: int = 0,
    min_size: int = 160,
    max_size: int = 256,
    lesion_contrast: float = 0.35,
    tissue_jitter: float = 0.05,
    pose_spread: float = 0.3,
) -> Path:
    """Write ``out_dir/<class>/<patient>_s<k>.jpeg`` and ``out_dir/groups.csv``; return it.

    ``patients`` virtual patients per tumor type (and for the normal class), each scanned in
    every sequence of its type with ``slices`` slices per series.
    """
    out = Path(out_dir)
    if patients < 1 or slices < 1:
        raise ValueError(f"patients and slices must be >= 1, got {patients} and {slices}.")
    if not 0.0 < lesion_contrast <= 1.0:
        raise ValueError(f"lesion_contrast must be in (0, 1], got {lesion_contrast}.")
    if not 16 <= min_size <= max_size:
        raise ValueError(f"need 16 <= min_size <= max_size, got {min_size} and {max_size}.")
    types = patient_types(num_classes)
    rows: list[tuple[str, str]] = []
    total = patients * slices * sum(len(names) for names in types.values())
    bar = progress_bar(total, "generating virtual patients", unit="slice")
    for ti, (tumor, names) in enumerate(types.items()):
        for p in range(patients):
            group = f"{tumor.strip('_').lower()}-{p:03d}"
            size = int(np.random.default_rng([seed, ti, p]).integers(min_size, max_size + 1))
            for qi, name in enumerate(names):
                folder = out / name
                folder.mkdir(parents=True, exist_ok=True)
                for k in range(slices):
                    bar.update()
                    height = (k + 0.5) / slices * 1.6 - 0.8  # -0.8 .. 0.8 of the lesion radius
                    slice_of = SliceOf(
                        rng=np.random.default_rng([seed, ti, p, qi, k, 1]),
                        lesion_scale=float(np.sqrt(1.0 - height**2)),
                        lesion_contrast=lesion_contrast,
                        tissue_jitter=tissue_jitter,
                        pose_spread=pose_spread,
                    )
                    patient_rng = np.random.default_rng([seed, ti, p])
                    pixels = render_scan(name, patient_rng, size=size, slice_of=slice_of)
                    relative = f"{name}/{group}_s{k}.jpeg"
                    Image.fromarray(pixels).save(out / relative, quality=92)
                    rows.append((relative, group))
    bar.close()
    with (out / GROUP_FILE).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "group"])
        writer.writerows(rows)
    manifest = _manifest(num_classes, patients, slices, seed, min_size, max_size, lesion_contrast,
                         tissue_jitter, pose_spread)  # fmt: skip
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return out


def _manifest(num_classes, patients, slices, seed, min_size, max_size, lesion_contrast,
              tissue_jitter, pose_spread) -> dict:  # fmt: skip
    return {
        "generator_version": GENERATOR_VERSION,
        "num_classes": num_classes,
        "patients": patients,
        "slices": slices,
        "seed": seed,
        "min_size": min_size,
        "max_size": max_size,
        "lesion_contrast": lesion_contrast,
        "tissue_jitter": tissue_jitter,
        "pose_spread": pose_spread,
    }


def ensure_patient_dataset(out_dir: str | Path, **params) -> Path:
    """Write the set into ``out_dir`` unless the same one is there (its manifest matches).

    Written beside ``out_dir`` and renamed into place; a folder holding anything else is
    refused rather than replaced (:func:`~braintumor.data.synthetic.publish_generated`).
    """
    out = Path(out_dir)
    full = {**_DEFAULTS, **params}
    if set(full) != set(_DEFAULTS):
        raise TypeError(f"unknown parameters: {sorted(set(full) - set(_DEFAULTS))}")
    foreign = f"'{out}' holds files that are not a virtual-patient set; not replaced."
    return publish_generated(out, MANIFEST_NAME, _manifest(**full),
                             lambda tmp: write_patient_dataset(tmp, **full), foreign,
                             "the virtual-patient set", "virtual-patient set")  # fmt: skip


_DEFAULTS = dict(num_classes=len(CLASS_CATALOGUE), patients=12, slices=8, seed=0, min_size=160,
                 max_size=256, lesion_contrast=0.35, tissue_jitter=0.05,
                 pose_spread=0.3)  # fmt: skip
