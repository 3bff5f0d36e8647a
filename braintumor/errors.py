"""The exceptions a user of braintumor sees. Each message says which file or setting is wrong,
what was expected, and what to do; the command lines print them in one line, without a
traceback."""

from __future__ import annotations


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
