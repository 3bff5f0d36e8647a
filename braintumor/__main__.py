"""``python -m braintumor <command> [arguments]``: every command line of braintumor but training
(``python train.py``), in one style.

Commands::

    predict       classify scans with an ONNX file or checkpoint    (MODEL INPUT [key=value])
    export        export a checkpoint to ONNX, parity-checked       (ckpt=X [key=value])
    app           the local web page for a model                    (MODEL [--port N] ...)
    audit         counts, sizes, bad files and duplicates of a dataset (ROOT [--out DIR] ...),
                  or the images present in several (NAME=ROOT NAME=ROOT ...)
    download      fetch a public set (brain44c, brain17c, nickparvar4, figshare3, br35h)
                                                          ([NAME] --out DIR [--archive ZIP])
    synthetic     write the procedural demo dataset                 (OUT [--per-class N] ...)
    sweep-report  summarize a multirun folder                       (SWEEP_DIR)

``python -m braintumor <command> --help`` describes a command's arguments.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from braintumor.errors import BraintumorError

COMMANDS = {
    "predict": "braintumor.inference.predict",
    "export": "braintumor.inference.export",
    "app": "braintumor.inference.app",
    "audit": "braintumor.data.commands.audit",
    "download": "braintumor.data.commands.download",
    "synthetic": "braintumor.data.commands.synthetic",
    "sweep-report": "braintumor.sweeps.report",
}


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``argv[0]``'s ``main`` with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    command, *rest = argv
    if command not in COMMANDS:
        raise SystemExit(
            f"unknown command '{command}'; one of: {', '.join(COMMANDS)} "
            "(python -m braintumor --help)."
        )
    try:
        importlib.import_module(COMMANDS[command]).main(rest)
    except BraintumorError as error:  # the user's to fix: one line, no traceback
        raise SystemExit(f"error: {' '.join(str(error).split())}") from None


if __name__ == "__main__":
    main()
