"""A 44-class set of JPEGs like the public one (102 per class, 200-630 px), made quickly.

    python bench/bench44.py OUT_DIR

Throughput benchmarks need the files' sizes and count, not 4.5k distinct phantoms: each class
renders 4 phantoms at 256 px (braintumor.data.synthetic) and writes 102 JPEGs resized to a
random side of 200-630 px with fresh noise. Reuses OUT_DIR when it is complete.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PIL import Image

from braintumor.data.synthetic import class_names_for, render_scan


def make_bench44(out: Path, per_class: int = 102, seed: int = 1) -> Path:
    """Write (or reuse) the set under ``out``; return ``out``."""
    names = class_names_for(44)
    if out.is_dir() and sum(1 for _ in out.rglob("*.jpeg")) == 44 * per_class:
        return out
    rng = np.random.default_rng(seed)
    for name in names:
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        bases = [Image.fromarray(render_scan(name, rng, 256)) for _ in range(4)]
        for i in range(per_class):
            side = int(rng.integers(200, 631))
            image = bases[i % 4].resize((side, side), Image.BILINEAR)
            noisy = np.asarray(image, dtype=np.int16) + rng.integers(
                -6, 7, (side, side, 1)[: np.asarray(image).ndim]
            )
            Image.fromarray(noisy.clip(0, 255).astype(np.uint8)).save(
                folder / f"{i:03d}.jpeg", quality=90
            )
    return out


if __name__ == "__main__":
    print(make_bench44(Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/bench44")))
