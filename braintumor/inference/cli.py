"""What the command lines of ``predict``, ``export`` and ``app`` share: a user's mistake ends
the command with one line on stderr and exit code 2 (:func:`~braintumor.errors.fail`), never a
traceback; a ``key=value`` argument's mistake named in one sentence."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from braintumor.errors import BraintumorError, fail

USER_ERRORS = (BraintumorError, FileNotFoundError, NotADirectoryError, IsADirectoryError)


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
