"""Decode and resize every scan once into a ``uint8`` array, held in memory or on disk.

``data.cache=memory`` keeps the array in RAM (shared copy-on-write with forked loader
workers); ``data.cache=disk`` writes it to a memory-mapped ``.npy`` file under
``decoded_cache_dir``, keyed by the data root, image size and channels, whose rows are
validated by each file's path, size and mtime: a second run decodes nothing, and a changed or
new file is decoded again while the other rows are copied over.

A disk cache is crash-safe: each build is a new, never rewritten array file
(``<key>.<pid>-<time>.npy``, space reserved before writing, flushed and fsynced), published by
one atomic replace of the index ``<key>.json`` that names it. A run killed at any moment
leaves the previous cache intact; its unfinished build is removed by the next one.

The pixels are exactly those of decoding then ``v2.Resize`` on the fly, so a cached run trains
like an uncached one.

One job, though over 300 lines: the cache's key, its crash-safe file protocol and its reuse
of valid rows are one contract; the build, the publish and the read must change together.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torchvision.transforms.v2 import functional as F

from braintumor.atomic import process_alive
from braintumor.console import progress_bar
from braintumor.data.catalog import Catalog, warn_unreadable
from braintumor.data.image import load_image
from braintumor.data.parameters import CACHE_MODES
from braintumor.data.split import SPLITS
from braintumor.errors import DataError

log = logging.getLogger(__name__)

CACHE_VERSION = 2


def decode_resized(path: str | Path, channels: int, size: int) -> torch.Tensor:
    """``(channels, size, size)`` ``uint8``: :func:`load_image` then an antialiased resize."""
    return F.resize(load_image(path, channels), [size, size], antialias=True)


def _decode_job(args: tuple[str, int, int]) -> np.ndarray | str:
    try:
        return decode_resized(*args).numpy()
    except Exception as error:  # PIL raises many types for bad files
        return f"{type(error).__name__}: {error}"


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_size, stat.st_mtime_ns


class DecodedImages:
    """Scans decoded to ``uint8`` arrays of one size: ``images[path]`` -> ``(C, S, S)`` tensor.

    Build it with :func:`decode_all`. A disk-backed instance pickles as its file name (loader
    workers started with ``spawn`` reopen the map instead of copying the array); the file of a
    build is never rewritten, so the name always means the same pixels.
    """

    def __init__(self, array: np.ndarray, row_of: dict[str, int], file: Path | None = None) -> None:
        self.array = array
        self.row_of = row_of
        self.file = file

    def __len__(self) -> int:
        return len(self.row_of)

    def __contains__(self, path: str) -> bool:
        return path in self.row_of

    def __getitem__(self, path: str) -> torch.Tensor:
        return torch.from_numpy(np.array(self.array[self.row_of[path]]))

    def stack(self, paths: Sequence[str]) -> torch.Tensor:
        """``(len(paths), C, S, S)``: the images of ``paths``, read in one copy."""
        return torch.from_numpy(self.array[[self.row_of[p] for p in paths]])

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self.file is not None:
            state["array"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self.file is not None:
            try:
                self.array = np.load(self.file, mmap_mode="r")
            except FileNotFoundError:
                raise DataError(
                    f"the decoded cache '{self.file}' was removed while this run used it (another "
                    "run rebuilt the cache of the same data?). Give concurrent runs their own "
                    "data.decoded_cache_dir, or use data.cache=memory."
                ) from None


def _decode_many(
    root: Path, paths: list[str], channels: int, size: int, workers: int
) -> Iterator[np.ndarray | str]:
    """Each path's decoded image (or the reason it failed), in order, as they arrive."""
    jobs = [(str(root / p), channels, size) for p in paths]
    if not jobs:
        return
    bar = progress_bar(len(jobs), "decoding images", disable=len(jobs) <= 500)
    if bar.disable and len(jobs) > 500:  # no terminal (a log file): one line, no bar
        log.info(f"decoding {len(jobs)} images")
    if workers > 1 and len(jobs) > 64:
        with ProcessPoolExecutor(workers) as pool:
            for result in pool.map(_decode_job, jobs, chunksize=32):
                bar.update()
                yield result
    else:
        for job in jobs:
            bar.update()
            yield _decode_job(job)
    bar.close()


def _decode_into(
    array: np.ndarray, row_of: dict[str, int], root: Path, todo: list[str], channels: int,
    size: int, workers: int,
) -> dict[str, str]:  # fmt: skip
    """Decode ``todo`` straight into their rows of ``array`` (no second copy of the images);
    ``{path: reason}`` of those that failed."""
    errors = {}
    for path, result in zip(todo, _decode_many(root, todo, channels, size, workers), strict=True):
        if isinstance(result, str):
            errors[path] = result
        else:
            array[row_of[path]] = result
    return errors


def _readable_rows(paths: list[str], row_of: dict[str, int], errors: dict[str, str]) -> dict:
    """``path -> row`` of the requested scans that decoded."""
    return {p: row_of[p] for p in paths if p not in errors}


def _log_decoded(todo: list[str], errors: dict[str, str], size: int, mode: str) -> None:
    if todo:
        log.info(f"decoded {len(todo) - len(errors)} image(s) at {size} px ({mode} cache)")


def cache_key(root: Path, channels: int, size: int) -> str:
    """File stem of the disk cache of ``root`` at ``size`` px and ``channels`` channels."""
    text = f"{root.resolve()}|{channels}|{size}|{CACHE_VERSION}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _read_index(index_file: Path) -> tuple[str | None, dict[str, list]]:
    """The array file an existing disk cache's index names, and its ``path -> [row, size_bytes,
    mtime_ns]``; ``(None, {})`` when there is none (or an unreadable or older one)."""
    try:
        stored = json.loads(index_file.read_text())
        if stored.get("version") != CACHE_VERSION:
            return None, {}
        index = {p: [i, *stamp] for i, (p, *stamp) in enumerate(stored["scans"])}
        return str(stored["array"]), index
    except (OSError, json.JSONDecodeError, KeyError, TypeError, ValueError):
        return None, {}


def _build_pid(name: str, stem: str) -> int | None:
    """The process id in a build file's name ``<stem>.<pid>-<time>.npy`` (else ``None``)."""
    middle = name[len(stem) + 1 :].split("-", 1)[0].split(".", 1)[0]
    return int(middle) if middle.isdigit() else None


def _remove_stale(cache_dir: Path, stem: str, keep: set[str]) -> None:
    """Remove the array files of ``stem`` that no index names and no live process is writing
    (a killed run's unfinished build, the previous build, a version-1 cache's files)."""
    for file in cache_dir.glob(f"{stem}.*"):
        if file.name in keep or file.name == f"{stem}.json":
            continue
        pid = _build_pid(file.name, stem)
        if pid is not None and pid != os.getpid() and process_alive(pid):
            continue
        file.unlink(missing_ok=True)


def _reserve(file: Path, cache_dir: Path) -> None:
    """Allocate every block of ``file`` now: a full disk fails here with a clear message, not
    with SIGBUS when a memory-mapped page is first written."""
    try:
        with file.open("r+b") as f:
            os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            return  # no fallocate on this filesystem: nothing reserved, nothing lost
        size = file.stat().st_size
        file.unlink(missing_ok=True)
        raise DataError(
            f"not enough disk space in data.decoded_cache_dir '{cache_dir}' for the decoded cache "
            f"({size / 2**20:.0f} MiB): free some space, point data.decoded_cache_dir at a "
            "larger disk, or use data.cache=memory (or none)."
        ) from None


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish_index(index_file: Path, array_name: str, entries: list) -> None:
    """Write the index that names ``array_name`` (already complete on disk) atomically."""
    tmp_index = index_file.with_name(f"{index_file.stem}.{os.getpid()}.index.tmp")
    with tmp_index.open("w") as f:
        json.dump({"version": CACHE_VERSION, "array": array_name, "scans": entries}, f)
        f.flush()
        os.fsync(f.fileno())
    tmp_index.replace(index_file)
    _fsync(index_file.parent)


def decode_all(
    root: str | Path,
    paths: Sequence[str],
    channels: int,
    size: int,
    mode: str = "memory",
    cache_dir: str | Path | None = None,
    workers: int = 1,
) -> tuple[DecodedImages, dict[str, str]]:
    """Decode ``root/path`` for each relative path at ``size`` x ``size``, once.

    Parameters
    ----------
    mode : ``memory`` (an array in RAM) or ``disk`` (a memory-mapped file in ``cache_dir``,
        reused across runs while each file's size and mtime match).
    workers : parallel decoding processes (when there are many images to decode).

    Returns
    -------
    The decoded images of the readable scans, and ``{path: reason}`` for those that failed.
    """
    if mode not in ("memory", "disk"):
        raise ValueError(f"data.cache must be one of {CACHE_MODES}, got '{mode}'.")
    root = Path(root)
    paths = list(dict.fromkeys(paths))
    shape = (channels, size, size)
    stamps = {p: _stamp(root / p) for p in paths}
    old: np.ndarray | None = None
    index: dict[str, list] = {}
    if mode == "disk":
        if cache_dir is None:
            raise ValueError("data.cache=disk needs data.decoded_cache_dir (a folder).")
        cache_dir = Path(cache_dir)
        stem = cache_key(root, channels, size)
        index_file = cache_dir / f"{stem}.json"
        name, index = _read_index(index_file)
        array_file = cache_dir / (name or f"{stem}.missing.npy")
        if index:
            try:
                old = np.load(array_file, mmap_mode="r")
                if old.shape[1:] != shape or old.shape[0] != len(index):
                    old, index = None, {}
            except (OSError, ValueError):
                old, index = None, {}
        hit = [
            p
            for p in paths
            if p in index and stamps[p] is not None and tuple(index[p][1:]) == stamps[p]
        ]
        if old is not None and len(hit) == len(paths):
            return DecodedImages(old, {p: index[p][0] for p in paths}, array_file), {}
    else:
        hit = []
    hits = set(hit)
    todo = [p for p in paths if p not in hits]
    todo_set = set(todo)
    # rows of other scans (another split) stay while their files are unchanged
    requested = set(paths)
    others = (
        [p for p in index if p not in requested and tuple(index[p][1:]) == _stamp(root / p)]
        if old is not None
        else []
    )
    rows = paths + others  # the requested scans first: row i of paths is row i of the array
    row_of = {p: i for i, p in enumerate(rows)}
    if mode == "memory":
        array = np.empty((len(paths), *shape), dtype=np.uint8)
        errors = _decode_into(array, row_of, root, todo, channels, size, workers)
        _log_decoded(todo, errors, size, mode)
        return DecodedImages(array, _readable_rows(paths, row_of, errors)), errors
    cache_dir.mkdir(parents=True, exist_ok=True)
    build = cache_dir / f"{stem}.{os.getpid()}-{time.time_ns():x}.npy"
    array = np.lib.format.open_memmap(build, mode="w+", dtype=np.uint8, shape=(len(rows), *shape))
    try:
        _reserve(build, cache_dir)
        for i, p in enumerate(rows):
            if p not in todo_set:
                array[i] = old[index[p][0]]
        errors = _decode_into(array, row_of, root, todo, channels, size, workers)
        _log_decoded(todo, errors, size, mode)
        array.flush()
        del array, old
        _fsync(build)
        stamps.update({p: tuple(index[p][1:]) for p in others})
        stamps.update({p: (-1, -1) for p in errors})  # a failed row never matches: retried
        _publish_index(index_file, build.name, [[p, *stamps[p]] for p in rows])
    except BaseException:
        build.unlink(missing_ok=True)  # a failed or interrupted build is never published
        raise
    _remove_stale(cache_dir, stem, keep={build.name})
    readable = _readable_rows(paths, row_of, errors)
    return DecodedImages(np.load(build, mmap_mode="r"), readable, build), errors


def decode_catalog(
    catalog: Catalog, size_of: Mapping[str, int], channels: int, mode: str,
    cache_dir: str | Path | None = None, workers: int = 1,
) -> tuple[Catalog, dict[str, DecodedImages]]:  # fmt: skip
    """Every scan of ``catalog`` decoded once, each split at its ``size_of[split]`` (one array
    per size); scans that fail here leave the catalog and join its skipped list. ``mode``
    ``none``: nothing decoded (the loaders read the files)."""
    if mode == "none" or not catalog.scans:
        return catalog, {}
    images: dict[str, DecodedImages] = {}
    errors: dict[str, str] = {}
    for size in sorted(set(size_of.values())):
        splits = [split for split in SPLITS if size_of[split] == size]
        wanted = [s.path for split in splits for s in catalog.in_split(split)]
        decoded, failed = decode_all(catalog.root, wanted, channels, size, mode, cache_dir,
                                     workers=workers)  # fmt: skip
        errors.update(failed)
        images.update(dict.fromkeys(splits, decoded))
    if errors:
        bad = [(s, errors[s.path]) for s in catalog.scans if s.path in errors]
        warn_unreadable(bad, catalog.root)
    return catalog.without(errors), images
