"""``python -m braintumor synthetic OUT [--classes N] [--per-class N] ...``: write the
procedural demo dataset (:mod:`braintumor.data.synthetic`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from braintumor.data.synthetic import write_synthetic_dataset
from braintumor.data.virtual_patients import GROUP_FILE, write_patient_dataset


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor synthetic",
        description="Write the procedural brain-MRI phantom dataset as an ImageFolder of JPEGs.",
    )
    parser.add_argument("out_dir", type=Path, help="where to write <class>/<scan>.jpeg")
    parser.add_argument("--classes", type=int, default=None,
                        help="number of classes (2-44; default 8, the hard set 44)")  # fmt: skip
    parser.add_argument("--per-class", type=int, default=100, help="scans per class")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-size", type=int, default=160, help="smallest image side (px)")
    parser.add_argument("--max-size", type=int, default=224, help="largest image side (px)")
    parser.add_argument("--rgb-fraction", type=float, default=0.15, help="share saved as RGB")
    hard = parser.add_argument_group(
        "the hard benchmark (braintumor.data.virtual_patients): virtual patients with several "
        "slices per series and a group file; --per-class and --rgb-fraction do not apply"
    )
    hard.add_argument("--patients", type=int, default=None,
                      help="virtual patients per tumor type (e.g. 12): the hard set")  # fmt: skip
    hard.add_argument("--slices", type=int, default=8, help="slices per series")
    hard.add_argument("--lesion-contrast", type=float, default=0.35,
                      help="1: the demo's lesions; lower: subtler")  # fmt: skip
    args = parser.parse_args(argv)
    if args.classes is None:
        args.classes = 8 if args.patients is None else 44
    if args.patients is not None:
        out = write_patient_dataset(
            args.out_dir, num_classes=args.classes, patients=args.patients, slices=args.slices,
            seed=args.seed, min_size=args.min_size, max_size=args.max_size,
            lesion_contrast=args.lesion_contrast,
        )  # fmt: skip
        print(f"wrote {args.classes} classes, {args.patients} virtual patients per tumor type, "
              f"{args.slices} slices per series to {out}; groups: {out / GROUP_FILE}")  # fmt: skip
        return
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
