"""The terminal a run shares with its progress bars: log records written above the bars
(never into them), and bars only where a person watches (a terminal), so that a log file, a
pipe or a batch job's output holds plain lines without carriage returns or escape codes.

Light on purpose (logging and tqdm only): Hydra loads :class:`ConsoleHandler` before the run.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from tqdm import tqdm


def is_terminal(stream: TextIO | None = None) -> bool:
    """Whether ``stream`` (default: stdout) is an interactive terminal."""
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ConsoleHandler(logging.StreamHandler):
    """A ``StreamHandler`` that writes each record with ``tqdm.write``: the progress bars are
    cleared, the line is printed, the bars are drawn again below it (Hydra's console handler,
    ``conf/hydra/default.yaml``)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=self.stream)
            self.flush()
        except RecursionError:
            raise
        except Exception:
            self.handleError(record)


def progress_bar(total: int, desc: str, unit: str = "img", *, disable: bool = False) -> tqdm:
    """A tqdm bar on stderr when stderr is a terminal; a silent one elsewhere (the caller logs
    a plain line instead)."""
    return tqdm(total=total, desc=desc, unit=unit, disable=disable or not is_terminal(sys.stderr))
