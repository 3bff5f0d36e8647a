"""Procedural brain-MRI phantoms: the offline demo dataset.

Each scan is an axial slice of a synthetic head: scalp, skull, cortex with gyral texture,
CSF, lateral ventricles and, for tumor classes, a lesion whose location, size, shape and
contrast depend on the tumor type and on the sequence (T1, T1C+, T2). Head pose, anatomy,
intensity, blur, noise, image size and colour mode vary per scan, so the classes are
learnable but not trivial. Class folders follow the "<Type> <Sequence>" naming of the
public 44-class Kaggle set, so the taxonomies that work there work here too.

Every scan is seeded from ``(seed, class index, scan index)``: the dataset is identical on
every machine and any subset of it can be regenerated alone.

One job, though over 300 lines: drawing one phantom; the anatomy's layers and the lesions
share the head's geometry and random stream, and split apart they would only pass it around.

Command line::

    python -m braintumor synthetic OUT_DIR --classes 8 --per-class 100 --seed 0
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from braintumor.console import progress_bar
from braintumor.errors import DataError

log = logging.getLogger(__name__)

GENERATOR_VERSION = 2
MANIFEST_NAME = ".synthetic.json"


@dataclass(frozen=True)
class Lesion:
    """How one tumor type looks: where it sits, how big, which shape."""

    center: tuple[float, float]  # head frame, x right, y down, unit = brain radius
    jitter: float  # random displacement of the center
    radius: tuple[float, float]  # min/max radius
    shape: str  # round | lobulated | ring | infiltrative | multiple | extra_axial
    edema: float  # edema halo size relative to the radius (0 = none)


TUMOR_TYPES: dict[str, Lesion] = {
    "Glioblastoma": Lesion((0.0, -0.1), 0.4, (0.24, 0.34), "ring", 0.7),
    "Meningioma": Lesion((0.0, 0.0), 0.0, (0.19, 0.28), "extra_axial", 0.25),
    "Meduloblastoma": Lesion((0.0, 0.52), 0.05, (0.15, 0.21), "lobulated", 0.3),
    "Schwannoma": Lesion((0.36, 0.42), 0.04, (0.12, 0.17), "round", 0.0),
    "Tuberculoma": Lesion((0.0, -0.05), 0.4, (0.07, 0.10), "multiple", 0.6),
    "Astrocitoma": Lesion((0.0, -0.15), 0.3, (0.26, 0.36), "infiltrative", 0.0),
    "Ependimoma": Lesion((0.0, 0.32), 0.05, (0.13, 0.18), "lobulated", 0.2),
    "Neurocitoma": Lesion((0.13, -0.05), 0.03, (0.12, 0.16), "lobulated", 0.0),
    "Carcinoma": Lesion((0.0, -0.1), 0.45, (0.08, 0.12), "multiple", 0.9),
    "Germinoma": Lesion((0.0, 0.12), 0.03, (0.10, 0.14), "round", 0.0),
    "Ganglioglioma": Lesion((0.5, 0.1), 0.06, (0.14, 0.2), "ring", 0.1),
    "Granuloma": Lesion((0.0, -0.2), 0.4, (0.07, 0.10), "ring", 0.5),
    "Oligodendroglioma": Lesion((0.25, -0.5), 0.08, (0.2, 0.28), "lobulated", 0.1),
    "Papiloma": Lesion((0.15, 0.0), 0.03, (0.09, 0.13), "lobulated", 0.0),
}

# The order in which classes are taken for ``--classes N``.
_FIRST_CLASSES = (
    "_NORMAL T1",
    "_NORMAL T2",
    "Glioblastoma T1C+",
    "Glioblastoma T2",
    "Meningioma T1C+",
    "Meningioma T2",
    "Meduloblastoma T1C+",
    "Schwannoma T1C+",
    "Tuberculoma T1C+",
    "Astrocitoma T2",
    "Ependimoma T1",
    "Neurocitoma T2",
    "Meningioma T1",
    "Glioblastoma T1",
    "Schwannoma T2",
    "Astrocitoma T1C+",
)
CLASS_CATALOGUE: tuple[str, ...] = (
    *_FIRST_CLASSES,
    *sorted({f"{t} {q}" for t in TUMOR_TYPES for q in ("T1", "T1C+", "T2")} - set(_FIRST_CLASSES)),
)
"""The 44 classes of the public set; the demo takes the first ``num_classes``."""

# Tissue intensities per sequence: scalp, skull, brain, csf, lesion, rim, edema.
CONTRAST = {
    "T1": dict(scalp=0.80, skull=0.08, brain=0.55, gray=0.45, csf=0.12, lesion=0.33, rim=0.38,
               edema=0.42),
    "T1C+": dict(scalp=0.82, skull=0.08, brain=0.55, gray=0.45, csf=0.12, lesion=0.80, rim=0.95,
                 edema=0.42),
    "T2": dict(scalp=0.55, skull=0.06, brain=0.42, gray=0.52, csf=0.92, lesion=0.78, rim=0.60,
               edema=0.72),
}  # fmt: skip


def split_class_name(name: str) -> tuple[str, str]:
    """``"Meningioma T1C+"`` -> ``("Meningioma", "T1C+")``."""
    tumor, _, sequence = name.rpartition(" ")
    return tumor, sequence


def _soft(d: np.ndarray, sharpness: float) -> np.ndarray:
    """Soft inside-mask of a normalized distance (1 on the boundary)."""
    return 1.0 / (1.0 + np.exp(np.clip((d - 1.0) * sharpness, -30, 30)))


def _paint(img: np.ndarray, mask: np.ndarray, value: float | np.ndarray) -> np.ndarray:
    return img * (1.0 - mask) + value * mask


def _texture(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, waves: int = 6) -> np.ndarray:
    """Low-frequency gyral-like texture in [-1, 1]."""
    out = np.zeros_like(x)
    for _ in range(waves):
        fx, fy = rng.normal(0, 9, size=2)
        out += np.sin(fx * x + fy * y + rng.uniform(0, 2 * np.pi))
    return out / waves


def _lesion_masks(
    lesion: Lesion,
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    brain_edge: float,
    scale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core, rim and edema masks (soft, in [0, 1]) for one lesion instance; ``scale`` shrinks
    its radius (a slice off the lesion's centre)."""
    core = np.zeros_like(x)
    rim = np.zeros_like(x)
    edema = np.zeros_like(x)
    count = int(rng.integers(2, 5)) if lesion.shape == "multiple" else 1
    for _ in range(count):
        r = rng.uniform(*lesion.radius)
        if scale != 1.0:
            r *= scale
        if lesion.shape == "extra_axial":
            angle = rng.uniform(-np.pi, 0.15 * np.pi)  # convexity, mostly upper half
            dist = brain_edge - 0.55 * r
            cx, cy = dist * np.cos(angle), dist * np.sin(angle)
        else:
            cx, cy = lesion.center
            if lesion.center[0] != 0.0 and rng.random() < 0.5:
                cx = -cx  # left or right side
            cx += rng.normal(0, lesion.jitter)
            cy += rng.normal(0, lesion.jitter)
            norm = np.hypot(cx, cy)
            limit = brain_edge - r - 0.05
            if norm > limit:
                cx, cy = cx * limit / norm, cy * limit / norm
        dx, dy = x - cx, y - cy
        phi = np.arctan2(dy, dx)
        if lesion.shape in ("lobulated", "infiltrative"):
            lobes = int(rng.integers(3, 7))
            wobble = 1.0 + 0.22 * np.sin(lobes * phi + rng.uniform(0, 2 * np.pi))
        else:
            wobble = 1.0 + 0.05 * np.sin(3 * phi + rng.uniform(0, 2 * np.pi))
        d = np.hypot(dx, dy * rng.uniform(0.8, 1.2)) / (r * wobble)
        sharp = 4.0 if lesion.shape == "infiltrative" else 14.0
        if lesion.shape in ("ring", "multiple"):
            inner = rng.uniform(0.45, 0.7)
            rim = np.maximum(rim, _soft(d, sharp) * (1 - _soft(d / inner, sharp)))
            core = np.maximum(core, _soft(d / inner, sharp))
        else:
            core = np.maximum(core, _soft(d, sharp))
        if lesion.edema > 0:
            edema = np.maximum(edema, _soft(d / (1.0 + lesion.edema * rng.uniform(0.6, 1.4)), 5))
    return core, rim, edema


@dataclass(frozen=True)
class SliceOf:
    """What changes between slices of one virtual patient (``braintumor.data.virtual_patients``).

    The patient's anatomy and lesion come from the ``rng`` given to :func:`render_scan`, seeded
    per patient; the slice's small pose change and its acquisition (bias, gain, blur, noise)
    come from ``rng`` here. ``lesion_scale`` is the lesion's cross-section at this slice's
    height; ``lesion_contrast`` (0-1) pulls the lesion's intensities towards the brain's;
    ``tissue_jitter`` shifts every tissue's intensity per patient (its scanner, its protocol),
    ``pose_spread`` widens the head's rotation per patient (radians).
    """

    rng: np.random.Generator
    lesion_scale: float = 1.0
    lesion_contrast: float = 1.0
    tissue_jitter: float = 0.0
    pose_spread: float = 0.0


def render_scan(
    class_name: str, rng: np.random.Generator, size: int = 256, slice_of: SliceOf | None = None
) -> np.ndarray:
    """Render one phantom slice of ``class_name`` as a ``size`` x ``size`` uint8 array.

    With ``slice_of``, ``rng`` draws the patient (the same seed gives the same head and lesion)
    and ``slice_of`` the slice; without it, every draw comes from ``rng``.
    """
    tumor, sequence = split_class_name(class_name)
    tissue = CONTRAST[sequence]
    if slice_of is not None and slice_of.tissue_jitter > 0:
        tissue = {k: v + rng.normal(0, slice_of.tissue_jitter) for k, v in tissue.items()}
    grid = np.linspace(-1.0, 1.0, size)
    gx, gy = np.meshgrid(grid, grid)

    # Head pose: rotation, scale, shift -> coordinates in the head frame.
    theta = rng.normal(0, 0.18)
    scale = rng.uniform(0.85, 1.0)
    sx, sy = rng.normal(0, 0.05, size=2)
    if slice_of is not None:
        if slice_of.pose_spread > 0:
            theta += rng.normal(0, slice_of.pose_spread)
        theta += slice_of.rng.normal(0, 0.03)
        sx, sy = sx + slice_of.rng.normal(0, 0.01), sy + slice_of.rng.normal(0, 0.01)
    c, s = np.cos(theta), np.sin(theta)
    x = (c * (gx - sx) + s * (gy - sy)) / scale
    y = (-s * (gx - sx) + c * (gy - sy)) / scale

    a, b = rng.uniform(0.74, 0.84), rng.uniform(0.88, 0.97)  # head half-axes
    rho = np.hypot(x / a, y / b)
    img = np.zeros_like(x)
    img = _paint(img, _soft(rho, 60), tissue["scalp"])
    img = _paint(img, _soft(rho / 0.93, 60), tissue["skull"])
    img = _paint(img, _soft(rho / 0.88, 60), tissue["csf"])
    brain = _soft(rho / 0.85, 40)
    texture = _texture(x, y, rng)
    cortex = tissue["gray"] + (tissue["brain"] - tissue["gray"]) * np.clip(0.5 + texture, 0, 1)
    img = _paint(img, brain, cortex)
    sulci = brain * np.clip((np.abs(texture) < 0.06) * (rho > 0.6), 0, 1) * 0.5
    img = _paint(img, sulci, tissue["csf"])

    # Lateral ventricles (size varies with age) and the midline.
    vent = rng.uniform(0.8, 1.3)
    for side in (-1.0, 1.0):
        vx, vy = x - side * 0.11 * vent, y + 0.08
        ang = side * 0.25
        u = np.cos(ang) * vx + np.sin(ang) * vy
        v = -np.sin(ang) * vx + np.cos(ang) * vy
        img = _paint(img, _soft(np.hypot(u / (0.055 * vent), v / (0.22 * vent)), 18), tissue["csf"])

    # Coordinates in brain-radius units (brain edge at ~0.85 * head axes).
    bx, by = x / (a * 0.85 / 0.8), y / (b * 0.85 / 0.9)
    if tumor in TUMOR_TYPES:
        scale = 1.0 if slice_of is None else slice_of.lesion_scale
        core, rim, edema = _lesion_masks(
            TUMOR_TYPES[tumor], bx, by, rng, brain_edge=0.82, scale=scale
        )
        edema = edema * brain
        heterogeneity = 1.0 + 0.12 * _texture(x * 3, y * 3, rng, waves=4)
        values = {k: tissue[k] for k in ("edema", "lesion", "rim")}
        if slice_of is not None and slice_of.lesion_contrast != 1.0:
            w = slice_of.lesion_contrast
            values = {k: tissue["brain"] + w * (v - tissue["brain"]) for k, v in values.items()}
        img = _paint(img, edema * 0.85, values["edema"])
        img = _paint(img, core * brain, values["lesion"] * heterogeneity)
        img = _paint(img, rim * brain, values["rim"])

    # Acquisition: gain, gamma, bias field, blur, noise.
    acq = rng if slice_of is None else slice_of.rng
    bias = 1.0 + 0.12 * (acq.normal() * gx + acq.normal() * gy)
    img = np.clip(img * bias * acq.uniform(0.85, 1.15), 0, 1) ** acq.uniform(0.8, 1.25)
    pil = Image.fromarray((img * 255).astype(np.uint8))
    pil = pil.filter(ImageFilter.GaussianBlur(radius=acq.uniform(0.3, 1.3) * size / 256))
    arr = np.asarray(pil, dtype=np.float32) / 255.0
    arr = np.abs(arr + acq.normal(0, acq.uniform(0.01, 0.05), size=arr.shape))  # Rician-like
    return (np.clip(arr, 0, 1) * 255).astype(np.uint8)


def class_names_for(num_classes: int) -> list[str]:
    """The first ``num_classes`` classes of the catalogue."""
    if not 2 <= num_classes <= len(CLASS_CATALOGUE):
        raise ValueError(
            f"num_classes must be between 2 and {len(CLASS_CATALOGUE)}, got {num_classes}."
        )
    return list(CLASS_CATALOGUE[:num_classes])


def write_synthetic_dataset(
    out_dir: str | Path,
    num_classes: int = 8,
    per_class: int = 100,
    seed: int = 0,
    min_size: int = 160,
    max_size: int = 224,
    rgb_fraction: float = 0.15,
) -> Path:
    """Write ``out_dir/<class>/<scan>.jpeg`` for ``num_classes`` classes and return ``out_dir``.

    Sizes vary in ``[min_size, max_size]``; a fraction ``rgb_fraction`` is saved as RGB, as in
    the public data. A manifest records the parameters so that :func:`ensure_synthetic_dataset`
    can reuse the folder.
    """
    out = Path(out_dir)
    if per_class < 1:
        raise ValueError(f"per_class must be >= 1, got {per_class}.")
    if not 16 <= min_size <= max_size:
        raise ValueError(f"need 16 <= min_size <= max_size, got {min_size} and {max_size}.")
    bar = progress_bar(num_classes * per_class, "generating demo scans", unit="scan")
    for ci, name in enumerate(class_names_for(num_classes)):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            bar.update()
            rng = np.random.default_rng([seed, ci, i])
            size = int(rng.integers(min_size, max_size + 1))
            pixels = render_scan(name, rng, size=size)
            image = Image.fromarray(pixels)
            if rng.random() < rgb_fraction:
                image = image.convert("RGB")
            image.save(folder / f"case_{i:04d}.jpeg", quality=92)
    bar.close()
    manifest = _manifest(num_classes, per_class, seed, min_size, max_size, rgb_fraction)
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return out


def _manifest(num_classes, per_class, seed, min_size, max_size, rgb_fraction) -> dict:
    return {
        "generator_version": GENERATOR_VERSION,
        "num_classes": num_classes,
        "per_class": per_class,
        "seed": seed,
        "min_size": min_size,
        "max_size": max_size,
        "rgb_fraction": rgb_fraction,
    }


def ensure_synthetic_dataset(out_dir: str | Path, **params) -> Path:
    """Generate the dataset into ``out_dir`` unless an identical one is already there.

    Generation writes to a temporary sibling folder and renames it into place, so an
    interrupted run never leaves a half-written dataset behind. A folder with files but no
    manifest (someone's own data) is never replaced: :class:`DataError`.
    """
    out = Path(out_dir)
    defaults = dict(num_classes=8, per_class=100, seed=0, min_size=160, max_size=224,
                    rgb_fraction=0.15)  # fmt: skip
    unknown = set(params) - set(defaults)
    if unknown:
        raise TypeError(f"unknown synthetic dataset parameters: {sorted(unknown)}")
    full = {**defaults, **params}
    foreign = (
        f"'{out}' holds files but is not a demo dataset (no {MANIFEST_NAME}): they are not "
        f"replaced by the demo. For your own images: data=folder data.root={out}; for the "
        "demo, a data.root that is empty or absent."
    )
    count = f"{full['num_classes']} classes x {full['per_class']} scans"
    return publish_generated(out, MANIFEST_NAME, _manifest(**full),
                             lambda tmp: write_synthetic_dataset(tmp, **full), foreign,
                             f"the demo dataset ({count})", "demo dataset")  # fmt: skip


def publish_generated(
    out: Path,
    manifest_name: str,
    manifest: dict,
    write: Callable[[Path], object],
    foreign: str,
    what: str,
    name: str,
) -> Path:
    """``out``, reused when its manifest equals ``manifest``, else written by ``write(tmp)``
    into a temporary sibling folder and renamed into place (an interrupted run leaves no
    half-written set). A folder with files but no manifest (someone's own data) is never
    replaced: :class:`DataError` with ``foreign``. ``what`` and ``name`` word the two log
    lines ("generating <what> into ...", "<name> ready in N s")."""
    manifest_path = out / manifest_name
    if manifest_path.is_file():
        try:
            if json.loads(manifest_path.read_text()) == manifest:
                return out
        except json.JSONDecodeError:
            pass
    elif out.is_dir() and any(out.iterdir()):
        raise DataError(foreign)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    log.info(f"generating {what} into {out}; once, reused by later runs")
    started = time.monotonic()
    try:
        write(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info(f"{name} ready in {time.monotonic() - started:.0f} s")
    return out
