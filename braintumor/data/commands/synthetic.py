"""``python -m braintumor synthetic OUT [--classes N] [--per-class N] ...``: write the
procedural demo dataset (:mod:`braintumor.data.synthetic`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from braintumor.data.synthetic import write_synthetic_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor synthetic",
        description="Write the procedural brain-MRI phantom dataset as an ImageFolder of JPEGs.",
    )
    parser.add_argument("out_dir", type=Path, help="where to write <class>/<scan>.jpeg")
    parser.add_argument("--classes", type=int, default=8, help="number of classes (2-44)")
    parser.add_argument("--per-class", type=int, default=100, help="scans per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-size", type=int, default=160, help="smallest image side (px)")
    parser.add_argument("--max-size", type=int, default=224, help="largest image side (px)")
    parser.add_argument("--rgb-fraction", type=float, default=0.15, help="share saved as RGB")
    args = parser.parse_args(argv)
    out = write_synthetic_dataset(
        args.out_dir,
        num_classes=args.classes,
        per_class=args.per_class,
        seed=args.seed,
        min_size=args.min_size,
        max_size=args.max_size,
        rgb_fraction=args.rgb_fraction,
    )
    print(f"wrote {args.classes} classes x {args.per_class} scans to {out}")


if __name__ == "__main__":
    main()
