"""optuna-dashboard on a sweep's study, on this machine only (127.0.0.1):

    make dashboard STUDY=outputs/optuna/cnn_optuna
    python -m braintumor.sweeps.dashboard outputs/optuna/cnn_optuna --port 8080

STUDY: a sweep folder (its ``optuna_study.yaml``, ``optuna.db`` or ``optuna.journal``), a
SQLite or journal file, or an RDB URL (``postgresql+psycopg://user@host/db``). On a cluster,
forward the port: ``ssh -L 8080:127.0.0.1:8080 login-node``.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from braintumor.errors import UsageError, fail
from braintumor.sweeps.study import open_storage, redact, storage_of

log = logging.getLogger(__name__)


def serve(study: str, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve the dashboard of ``study`` (see the module doc) until interrupted."""
    try:
        from optuna_dashboard import run_server
    except ImportError as error:
        raise UsageError(
            f"the dashboard needs optuna-dashboard ({error}): pip install 'braintumor[tracking]'"
        ) from error
    spec = storage_of(study)
    print(f"optuna-dashboard on {redact(spec)}: http://{host}:{port}/ (Ctrl-C to stop)", flush=True)
    run_server(open_storage(spec), host=host, port=port)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor.sweeps.dashboard", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("study", help="a sweep folder, a SQLite/journal file or an RDB URL")
    parser.add_argument("--host", default="127.0.0.1", help="default: this machine only")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    try:
        serve(args.study, args.host, args.port)
    except UsageError as error:
        fail(error)


if __name__ == "__main__":
    main()
