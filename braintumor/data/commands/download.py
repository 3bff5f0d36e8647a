"""``python -m braintumor download [NAME] --out DIR [--archive ZIP]``: fetch a public set
(:mod:`braintumor.data.download`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from braintumor.data import download as library
from braintumor.data.public_sets import PUBLIC_SETS
from braintumor.data.sources import layout_of
from braintumor.errors import DataError, fail


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor download", description=library.__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "name", nargs="?", default="brain44c", choices=list(PUBLIC_SETS),
        help="the set (default brain44c)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, default=None, help="where the set goes (default data/NAME)"
    )
    parser.add_argument(
        "--archive", type=Path, default=None, help="a manually downloaded zip (or folder)"
    )
    args = parser.parse_args(argv)
    out = args.out or Path("data") / args.name
    try:
        out = library.download(out, args.archive, name=args.name)
    except DataError as error:
        fail(error)
    print(layout_of(PUBLIC_SETS[args.name].layout).module().describe(out))
    print(f"next: python -m braintumor audit {args.name}={out}")
    print(f"      python train.py data={args.name} data.root={out}")


if __name__ == "__main__":
    main()
