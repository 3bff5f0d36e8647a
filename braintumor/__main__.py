"""``python -m braintumor <command> [arguments]``: every command line of braintumor but training
(``python train.py [overrides]``). :data:`COMMANDS` is the one table of them: ``--help`` prints
it and :func:`main` dispatches by it."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from braintumor.errors import BraintumorError, fail


@dataclass(frozen=True)
class Command:
    """A command: the ``module`` whose ``main(argv)`` runs it, what it does in one line, and
    its ``arguments`` (``key=value``: a setting; ``--flag``: an option)."""

    module: str
    help: str
    arguments: str


COMMANDS: dict[str, Command] = {
    "predict": Command(
        "braintumor.inference.predict",
        "classify scans with an ONNX file or checkpoint",
        "MODEL INPUT [key=value ...]",
    ),
    "export": Command(
        "braintumor.inference.export",
        "export a checkpoint to ONNX, parity-checked",
        "ckpt=X [key=value ...]",
    ),
    "app": Command(
        "braintumor.inference.web.app", "the local web page for a model", "MODEL [--port N] ..."
    ),
    "audit": Command(
        "braintumor.data.commands.audit",
        "counts, sizes, bad files, duplicates (across sets: NAME=ROOT ...)",
        "ROOT [--out DIR] ...",
    ),
    "download": Command(
        "braintumor.data.commands.download",
        "fetch a public set (brain44c, brain17c, nickparvar4, figshare3, br35h)",
        "[NAME] [--out DIR] [--archive ZIP]",
    ),
    "synthetic": Command(
        "braintumor.data.commands.synthetic",
        "write the procedural demo dataset",
        "OUT [--per-class N] ...",
    ),
    "ensemble": Command(
        "braintumor.pipeline.ensemble",
        "combine trained runs into one model, calibrated and scored on held-out images",
        "RUN_OR_CKPT... --out DIR [eval.key=value ...]",
    ),
    "sweep-report": Command(
        "braintumor.sweeps.report", "summarize a multirun folder", "SWEEP_DIR [--out DIR] ..."
    ),
}


def usage() -> str:
    """The ``--help`` text: every command of :data:`COMMANDS` with its arguments."""
    width = max(len(name) for name in COMMANDS) + 2
    settings = ", ".join(n for n, c in COMMANDS.items() if "key=value" in c.arguments)
    rows = [
        f"  {name:<{width}}{command.help}\n  {'':<{width}}  python -m braintumor {name} "
        f"{command.arguments}"
        for name, command in COMMANDS.items()
    ]
    return "\n".join(
        [
            "usage: python -m braintumor <command> [arguments]",
            "",
            "commands:",
            *rows,
            "",
            f"Arguments: key=value is a setting ({settings}: as train.py's overrides), --flag an",
            "option. python -m braintumor <command> --help describes a command's arguments.",
            "Training is python train.py [overrides] (docs/training.md).",
        ]
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run ``argv[0]``'s ``main`` with the remaining arguments."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    name, *rest = argv
    if name not in COMMANDS:
        fail(
            f"unknown command '{name}'; one of: {', '.join(COMMANDS)} "
            "(python -m braintumor --help)."
        )
    try:
        importlib.import_module(COMMANDS[name].module).main(rest)
    except BraintumorError as error:  # the user's to fix: one line, no traceback
        fail(error)


if __name__ == "__main__":
    main()
