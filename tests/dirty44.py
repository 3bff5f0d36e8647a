"""A small but dirty copy of the 44-class layout, with every kind of problem planted."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.data.synthetic import CLASS_CATALOGUE, render_scan


@dataclass
class Dirty:
    root: Path
    near_pairs: list[tuple[str, str]] = field(default_factory=list)  # same class
    conflict_pairs: list[tuple[str, str]] = field(default_factory=list)  # across classes
    unreadable: list[str] = field(default_factory=list)
    junk: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)


def _jpeg(array: np.ndarray, path: Path, quality: int = 90, mode: str = "L") -> None:
    Image.fromarray(array).convert(mode).save(path, quality=quality)


def build_dirty44(root: Path, seed: int = 0) -> Dirty:
    """44 real folder names, 3 to 14 images each (one class with exactly 6), planted
    near-duplicates (re-encoded and rescaled copies, two of them in another class), a
    truncated JPEG, junk files, and CMYK / RGBA / 16-bit / RGB / grayscale images."""
    dirty = Dirty(root)
    rng = np.random.default_rng(seed)
    for ci, name in enumerate(CLASS_CATALOGUE):
        folder = root / name
        folder.mkdir(parents=True)
        n = 6 if ci == 5 else 3 + (ci * 7) % 12
        for i in range(n):
            size = int(rng.integers(56, 80))
            pixels = render_scan(name, np.random.default_rng([seed, ci, i]), size)
            _jpeg(pixels, folder / f"{i}._big_gallery.jpeg", mode="RGB" if i % 4 == 3 else "L")
        dirty.counts[name] = n
    names = list(CLASS_CATALOGUE)
    # near-duplicates within a class: re-encoded at low quality, or rescaled by 10 %
    for k, ci in enumerate(range(2, 44, 5)):
        src = root / names[ci] / "0._big_gallery.jpeg"
        image = Image.open(src).convert("L")
        if k % 2:
            image = image.resize((int(image.width * 0.9), int(image.height * 0.9)))
        copy = src.with_name("0._big_gallery (1).jpeg")
        image.save(copy, quality=55)
        dirty.near_pairs.append((_rel(root, src), _rel(root, copy)))
        dirty.counts[names[ci]] += 1
    # the same scan filed under two classes: a possible label conflict
    for a, b in ((3, 4), (20, 21)):
        src = root / names[a] / "1._big_gallery.jpeg"
        copy = root / names[b] / "copied_from_other_class.jpeg"
        Image.open(src).save(copy, quality=80)
        dirty.conflict_pairs.append((_rel(root, src), _rel(root, copy)))
        dirty.counts[names[b]] += 1
    # a truncated JPEG
    bad = root / names[10] / "truncated.jpeg"
    buffer = io.BytesIO()
    Image.fromarray(render_scan(names[10], rng, 64)).save(buffer, "JPEG")
    bad.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    dirty.unreadable.append(_rel(root, bad))
    # junk
    for junk in (root / ".DS_Store", root / names[0] / ".DS_Store", root / names[1] / "Thumbs.db"):
        junk.write_bytes(b"\x00junk")
        dirty.junk.append(_rel(root, junk))
    # other modes: CMYK JPEG, RGBA PNG, 16-bit grayscale PNG
    gray = render_scan(names[30], np.random.default_rng([seed, 30, 99]), 64)
    Image.fromarray(gray).convert("CMYK").save(root / names[30] / "cmyk.jpeg")
    rgba = Image.fromarray(
        render_scan(names[31], np.random.default_rng([seed, 31, 99]), 64)
    ).convert("RGBA")
    rgba.save(root / names[31] / "alpha.png")
    deep = render_scan(names[32], np.random.default_rng([seed, 32, 99]), 64).astype(np.uint16) * 257
    Image.fromarray(deep).save(root / names[32] / "sixteen_bit.png")
    for i in (30, 31, 32):
        dirty.counts[names[i]] += 1
    return dirty


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
