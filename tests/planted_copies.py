"""A held-out set of distinct phantoms with planted copies: re-encoded, rescaled, and cropped
by 1-3% of a side (the commonest duplicates of the 44-class set are such screenshots)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.data.synthetic import class_names_for, render_scan

KINDS = ("crop", "crop+rescale", "crop+reencode", "rescale", "reencode")


@dataclass
class Planted:
    root: Path
    originals: list[str] = field(default_factory=list)  # paths relative to root
    copies: list[tuple[str, str, str]] = field(default_factory=list)  # (original, copy, kind)


def build_planted(root: Path, per_class: int = 2, n_copies: int = 50, seed: int = 0) -> Planted:
    """``root/<class>/<i>.jpeg`` for 44 classes, and ``n_copies`` copies beside their originals."""
    rng = np.random.default_rng(seed)
    planted = Planted(root)
    for ci, name in enumerate(class_names_for(44)):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            size = int(rng.integers(200, 300))
            pixels = render_scan(name, np.random.default_rng([seed, ci, i]), size)
            Image.fromarray(pixels).save(root / name / f"{i}.jpeg", quality=90)
            planted.originals.append(f"{name}/{i}.jpeg")
    for k in range(n_copies):
        source = planted.originals[int(rng.integers(len(planted.originals)))]
        image = Image.open(root / source).convert("L")
        kind = KINDS[k % len(KINDS)]
        if "crop" in kind:
            w, h = image.size
            cut = [rng.uniform(0.0, 0.01) for _ in range(4)]
            cut[int(rng.integers(4))] = rng.uniform(0.01, 0.03)  # 1-3% of one side at least
            box = (
                round(cut[0] * w),
                round(cut[1] * h),
                w - round(cut[2] * w),
                h - round(cut[3] * h),
            )
            image = image.crop(box)
        if "rescale" in kind:
            scale = rng.uniform(0.8, 1.25)
            image = image.resize((round(image.width * scale), round(image.height * scale)))
        copy = f"{source[:-5]}_copy{k}.jpeg"
        image.save(root / copy, quality=int(rng.integers(60, 90)))
        planted.copies.append((source, copy, kind))
    return planted
