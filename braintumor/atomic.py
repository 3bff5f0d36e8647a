"""Files published whole or not at all: a temporary file beside the target, synced, then
``os.replace``d over it. A reader (or a run that dies half-way) sees the old file or the new
one, never part of one."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO


def _sync_folder(folder: Path) -> None:
    try:  # the rename itself survives a power cut once the folder is synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def write_atomically(path: str | Path, content: bytes | str | Callable[[IO[bytes]], None]) -> Path:
    """Publish ``path`` with ``content`` (bytes, UTF-8 text, or a function that fills the open
    file). On any failure the temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            if callable(content):
                content(f)
            else:
                f.write(content.encode() if isinstance(content, str) else content)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def copy_atomically(source: str | Path, target: str | Path) -> Path:
    """Copy ``source`` to ``target`` with :func:`write_atomically`."""

    def copy(f: IO[bytes]) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, f, 1 << 20)

    return write_atomically(target, copy)


def remove_stale_temporaries(folder: str | Path) -> list[Path]:
    """Remove the temporary files :func:`write_atomically` left in ``folder`` when its process
    was killed (``.<name>.<hex>.tmp``); returns them."""
    removed = []
    for tmp in Path(folder).glob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed.append(tmp)
    return removed


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` still runs on this machine (the writer of a temporary file, a
    run's folder, a cache build): a file of a dead one is stale."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True
