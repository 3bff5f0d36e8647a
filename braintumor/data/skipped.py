"""``skipped_images.csv``: the scans a run left out, and why (``path,reason``)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from braintumor.atomic import write_atomically

HEADER = ("path", "reason")


def _row(*fields: str) -> str:
    text = io.StringIO()
    csv.writer(text).writerow(fields)
    return text.getvalue()


def write_skipped(path: Path, rows: Iterable[tuple[str, str]]) -> Path:
    """Write ``path,reason`` rows (quoted by the csv module) atomically."""
    return write_atomically(path, _row(*HEADER) + "".join(_row(p, r) for p, r in rows))


def append_skipped(path: Path, scan_path: str, reason: str) -> None:
    """Append one row (from any process: one ``O_APPEND`` write of a whole line), creating
    the file with its header when it does not exist yet."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, _row(*HEADER).encode())
        os.close(fd)
    except FileExistsError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, _row(scan_path, reason).encode())
    finally:
        os.close(fd)


def read_skipped(path: Path) -> list[tuple[str, str]]:
    """The rows of a ``skipped_images.csv`` (none when it does not exist)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        return [(row["path"], row["reason"]) for row in csv.DictReader(f)]
