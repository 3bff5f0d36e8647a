"""What the command lines of ``predict``, ``export`` and ``app`` share: a user's mistake ends
the command with one line on stderr and exit code 2 (as argparse does), never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import NoReturn

from braintumor.errors import BraintumorError

USER_ERRORS = (BraintumorError, FileNotFoundError, NotADirectoryError, IsADirectoryError)
USAGE = 2  # the exit code of a command line used wrongly


def one_line(message: object) -> str:
    """``message`` with its line breaks and runs of spaces folded into single spaces."""
    return " ".join(str(message).split())


def fail(message: object) -> NoReturn:
    """Print ``error: <message>`` on one line to stderr and exit with :data:`USAGE`."""
    print(f"error: {one_line(message)}", file=sys.stderr, flush=True)
    raise SystemExit(USAGE)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors a user can fix (:data:`USER_ERRORS`) into :func:`fail`."""
    try:
        yield
    except USER_ERRORS as error:
        fail(error)


def argument_error(error: Exception, known: Sequence[str]) -> str:
    """OmegaConf's complaint about a ``key=value`` argument, as one sentence naming the key:
    an unknown key lists the known ones, a bad value says what was expected."""
    key = getattr(error, "full_key", None) or ""
    message = str(getattr(error, "msg", None) or error).splitlines()[0]
    if key and key.split(".")[0] not in known:
        return f"unknown argument '{key}'; the arguments are {', '.join(known)} (see --help)."
    return f"bad value for {key or 'an argument'}: {message} (see --help)."
