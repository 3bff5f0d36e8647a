"""The exceptions a user of braintumor sees. Each message says which file or setting is wrong,
what was expected, and what to do; the command lines print them in one line, without a
traceback (:func:`fail`)."""

from __future__ import annotations

import sys
from typing import NoReturn

USAGE = 2  # the exit code of a command line used wrongly (as argparse's)


class BraintumorError(Exception):
    """Base of the errors below: something the user can fix."""


class DataError(BraintumorError, ValueError):
    """The data on disk is not what braintumor expects (a folder, a split or group file)."""


class CheckpointError(BraintumorError, ValueError):
    """A checkpoint file that cannot be trusted: empty, unreadable, corrupt or foreign."""


class UsageError(BraintumorError, ValueError):
    """A setting or a model file that cannot be used as given (predict, export, the app)."""


class WeightsUnavailableError(BraintumorError, RuntimeError):
    """Pretrained weights were asked for but cannot be had here (offline, no local file)."""


def one_line(error: object) -> str:
    """``error: <the message>``, its line breaks and runs of spaces folded into single spaces."""
    return f"error: {' '.join(str(error).split())}"


def fail(error: object) -> NoReturn:
    """End a command line on a mistake the user can fix: :func:`one_line` on stderr and exit
    code :data:`USAGE`, no traceback."""
    print(one_line(error), file=sys.stderr, flush=True)
    raise SystemExit(USAGE)
