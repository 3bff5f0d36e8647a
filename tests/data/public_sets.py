"""Tiny copies of the public sets in their real layouts, written into a test's ``tmp_path``.

``write_figshare_mat`` writes a real MATLAB v7.3 file (HDF5 behind MATLAB's 512-byte header,
fields transposed as MATLAB stores them), so the reader is tested on the format, not on a
stand-in.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from braintumor.data.sources.figshare import LABELS
from braintumor.data.synthetic import render_scan

MATLAB_HEADER = (
    b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Nov 30 00:00:00 2026 "
    b"HDF5 schema 1.00 ."
)


def _matlab_header() -> bytes:
    text = MATLAB_HEADER.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    return text.ljust(512, b"\x00")


def phantom(name: str, seed: int | list[int], size: int = 96) -> np.ndarray:
    """A procedural brain slice (``uint8`` ``(size, size)``) of class ``name``."""
    return render_scan(name, np.random.default_rng(seed), size)


def write_figshare_mat(
    path: Path,
    label: int,
    pid: str,
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    fields: tuple[str, ...] = ("label", "PID", "image", "tumorBorder", "tumorMask"),
) -> Path:
    """``path`` as one figshare slice: ``cjdata`` with ``fields`` (drop one to test the
    reader's error); ``image`` int16 (H, W) upright, stored transposed like MATLAB does."""
    mask = np.zeros(image.shape, dtype=bool) if mask is None else mask
    ys, xs = np.nonzero(mask)
    border = np.stack([xs[:8], ys[:8]], 1).ravel().astype(np.float64) if len(xs) else np.zeros(2)
    with h5py.File(path, "w", userblock_size=512) as file:
        data = file.create_group("cjdata")
        values = {
            "label": np.array([[float(label)]]),
            "PID": np.array([[ord(c) for c in pid]], dtype=np.uint16).T,
            "image": np.asarray(image, dtype=np.int16).T,
            "tumorBorder": border[None, :],
            "tumorMask": mask.astype(np.uint8).T,
        }
        for name in fields:
            data.create_dataset(name, data=values[name])
            data[name].attrs["MATLAB_class"] = np.bytes_("char" if name == "PID" else "double")
    with path.open("r+b") as f:
        f.write(_matlab_header())
    return path


def figshare_slice(
    seed: int | list[int], label: int, size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """A 12-bit-like int16 slice of family ``label`` (1-3) and a round tumour mask in it."""
    name = {1: "Meningioma T1C+", 2: "Glioblastoma T1C+", 3: "Schwannoma T1C+"}[label]
    pixels = phantom(name, seed, size).astype(np.int16) * 9 + 40
    rng = np.random.default_rng(seed)
    cy, cx = rng.integers(size // 4, 3 * size // 4, 2)
    yy, xx = np.mgrid[:size, :size]
    mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= (size // 8) ** 2
    pixels[mask] += 600  # the tumour is bright (contrast-enhanced)
    return pixels, mask


def write_figshare(root: Path, patients: int = 6, per_patient: int = 3, size: int = 64) -> dict:
    """``root/<n>.mat`` slices of ``patients`` patients (each one label), plus ``cvind.mat``
    (not a slice, as in the download). Returns ``{file name: (label, pid)}``."""
    root.mkdir(parents=True, exist_ok=True)
    written, n = {}, 1
    for p in range(patients):
        label, pid = 1 + p % 3, f"{100360 + p * 7}"
        for k in range(per_patient):
            image, mask = figshare_slice([p, k], label, size)
            write_figshare_mat(root / f"{n}.mat", label, pid, image, mask)
            written[f"{n}.mat"] = (label, pid)
            n += 1
    with h5py.File(root / "cvind.mat", "w") as file:
        file.create_dataset("cvind", data=np.arange(n - 1, dtype=np.float64) % 5 + 1)
    return written


def write_class_folders(
    root: Path,
    folders: dict[str, str],
    per_class: int,
    seed: int = 0,
    size: int = 80,
    suffix: str = ".jpg",
) -> list[str]:
    """``root/<folder>/<i><suffix>``: for each folder, phantoms drawn as class ``folders[f]``."""
    paths = []
    for ci, (folder, drawn_as) in enumerate(folders.items()):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = phantom(drawn_as, [seed, ci, i], size)
            Image.fromarray(pixels).save(root / folder / f"{i}{suffix}", quality=92)
            paths.append(f"{folder}/{i}{suffix}")
    return paths


NICKPARVAR = {
    "glioma": "Glioblastoma T1C+",
    "meningioma": "Meningioma T1C+",
    "notumor": "_NORMAL T1",
    "pituitary": "Germinoma T1C+",
}


def write_nickparvar(root: Path, train: int = 6, test: int = 2, seed: int = 0) -> None:
    """``root/Training/<class>/`` and ``root/Testing/<class>/``, the four classes."""
    write_class_folders(root / "Training", NICKPARVAR, train, seed)
    write_class_folders(root / "Testing", NICKPARVAR, test, seed + 1000)


def write_br35h(root: Path, per_class: int = 6, seed: int = 0) -> None:
    """``root/yes/``, ``root/no/`` and the unlabelled ``root/pred/``."""
    write_class_folders(root, {"yes": "Glioblastoma T2", "no": "_NORMAL T2"}, per_class, seed)
    write_class_folders(root, {"pred": "Meningioma T2"}, 3, seed + 7)


def write_44c(root: Path, per_class: int = 4, seed: int = 0) -> None:
    """A few ``<Type> <Sequence>`` folders of the 44-class set."""
    names = [
        "Astrocitoma T1",
        "Glioblastoma T1C+",
        "Meningioma T2",
        "Schwannoma T1C+",
        "_NORMAL T1",
    ]
    write_class_folders(root, {n: n for n in names}, per_class, seed)


GLIOMA_17 = "Glioma (Astrocitoma, Ganglioglioma, Glioblastoma, Oligodendroglioma, Ependimoma)"
SEVENTEEN = {
    f"{GLIOMA_17} T1C+": "Glioblastoma T1C+",
    "Meningioma (de Baixo Grau, Atípico, Anaplásico, Transicional) T2": "Meningioma T2",
    "NORMAL T1": "_NORMAL T1",
    "Outros Tipos de Lesões (Abscessos, Cistos, Encefalopatias Diversas) T1C+": "Granuloma T1C+",
}


def write_17c(root: Path, per_class: int = 4, seed: int = 0) -> None:
    """A few of the 17-class set's long folder names (accents and parentheses included)."""
    write_class_folders(root, SEVENTEEN, per_class, seed)


COPY_KINDS = ("rewindow", "rewindow+rescale", "rewindow+crop", "rewindow+crop+rescale")


def plant_figshare_copies(
    figshare: Path, nickparvar: Path, n_copies: int, seed: int = 0
) -> list[tuple[str, str, str]]:
    """Copy ``n_copies`` figshare slices into the 4-class set as JPEGs, the way that set holds
    them: windowed by another rule (min..max instead of our percentile window), and some
    rescaled and cropped by 1-3% of a side. Returns ``(figshare path, copy path, kind)``."""
    rng = np.random.default_rng(seed)
    slices = sorted(p.name for p in figshare.glob("*.mat") if p.name != "cvind.mat")
    chosen = rng.choice(len(slices), size=n_copies, replace=False)
    planted = []
    for k, index in enumerate(chosen):
        name = slices[int(index)]
        label, values = raw_slice(figshare / name)
        low, high = float(values.min()), float(values.max())
        image = Image.fromarray(((values - low) / (high - low) * 255).round().astype(np.uint8))
        kind = COPY_KINDS[k % len(COPY_KINDS)]
        if "crop" in kind:
            w, h = image.size
            cut = [rng.uniform(0.0, 0.01) for _ in range(4)]
            cut[int(rng.integers(4))] = rng.uniform(0.01, 0.03)
            image = image.crop(
                (round(cut[0] * w), round(cut[1] * h), w - round(cut[2] * w), h - round(cut[3] * h))
            )
        if "rescale" in kind:
            scale = rng.uniform(0.8, 1.6)
            image = image.resize((round(image.width * scale), round(image.height * scale)))
        split = "Training" if k % 3 else "Testing"
        copy = f"{split}/{LABELS[label]}/fig_copy{k}.jpg"  # the 4-class set's folder names
        image.save(nickparvar / copy, quality=int(rng.integers(70, 95)))
        planted.append((name, copy, kind))
    return planted


def raw_slice(path: Path) -> tuple[int, np.ndarray]:
    """``(label code, image upright as float)`` straight from the HDF5 file (not through the
    reader under test)."""
    with h5py.File(path, "r") as file:
        data = file["cjdata"]
        return int(np.asarray(data["label"]).ravel()[0]), np.asarray(data["image"]).T.astype(float)
