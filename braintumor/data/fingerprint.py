"""One decode per scan: readability, size, mode, file digest and perceptual hash, cached.

The cache is a JSON file keyed by relative path and validated by file size and mtime, so a
second run over the same folder decodes nothing, and a changed file is inspected again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import imagehash

from braintumor.atomic import write_atomically
from braintumor.console import progress_bar
from braintumor.data.cropped_copies import crop_hash
from braintumor.data.image import open_scan, to_channels

CACHE_VERSION = 3


@dataclass
class Fingerprint:
    """What one decode of a scan tells."""

    size_bytes: int
    mtime_ns: int
    error: str | None = None  # why the image cannot be decoded, None when it can
    width: int = 0
    height: int = 0
    mode: str = ""
    sha256: str = ""  # of the file's bytes: exact duplicates
    phash: str = ""  # perceptual hash (hex): near duplicates
    crop_hash: str = ""  # coarse hash of the centre (hex): copies with another crop


def fingerprint(path: str | Path, hash_size: int = 16) -> Fingerprint:
    """Decode ``path`` once (JPEGs at reduced scale) and describe it."""
    path = Path(path)
    stat = path.stat()
    data = path.read_bytes()
    result = Fingerprint(stat.st_size, stat.st_mtime_ns, sha256=hashlib.sha256(data).hexdigest())
    try:
        with open_scan(path) as image:
            result.width, result.height, result.mode = image.width, image.height, image.mode
            # Decode JPEGs at reduced scale, but no smaller than 256 px: coarser DCT scaling
            # moves the hash of a re-encoded copy by 10+ bits (measured), 256 px by <= 6.
            side = max(256, 16 * hash_size)
            image.draft("L" if image.mode in ("L", "RGB") else None, (side, side))
            image.load()
            gray = to_channels(image, 1)
        result.phash = str(imagehash.phash(gray, hash_size=hash_size))
        result.crop_hash = crop_hash(gray)
    except Exception as error:  # PIL raises many types for bad files
        result.error = f"{type(error).__name__}: {error}"
    return result


def _job(args: tuple[str, int]) -> Fingerprint:
    return fingerprint(*args)


def fingerprint_scans(
    root: str | Path,
    paths: Iterable[str],
    hash_size: int = 16,
    cache_file: str | Path | None = None,
    workers: int = 1,
    progress: bool = False,
) -> dict[str, Fingerprint]:
    """Fingerprints of ``root/path`` for each relative path, reusing ``cache_file`` entries
    whose size and mtime still match; ``workers`` > 1 decodes in parallel processes."""
    root = Path(root)
    paths = list(paths)
    cached: dict[str, dict] = {}
    cache_file = Path(cache_file) if cache_file else None
    if cache_file is not None and cache_file.is_file():
        try:
            stored = json.loads(cache_file.read_text())
            if stored.get("version") == CACHE_VERSION and stored.get("hash_size") == hash_size:
                cached = stored["scans"]
        except (json.JSONDecodeError, KeyError, TypeError):
            cached = {}
    result: dict[str, Fingerprint] = {}
    todo: list[str] = []
    for rel in paths:
        entry = cached.get(rel)
        if entry is not None:
            try:
                stat = os.stat(root / rel)
            except OSError:
                stat = None
            if (
                stat
                and entry["size_bytes"] == stat.st_size
                and entry["mtime_ns"] == stat.st_mtime_ns
            ):
                result[rel] = Fingerprint(**entry)
                continue
        todo.append(rel)
    if todo:
        jobs = [(str(root / rel), hash_size) for rel in todo]
        bar = progress_bar(len(jobs), "inspecting images", disable=not progress)  # terminal only
        if workers > 1 and len(jobs) > 64:
            with ProcessPoolExecutor(workers) as pool:
                for rel, fp in zip(todo, pool.map(_job, jobs, chunksize=32), strict=True):
                    result[rel] = fp
                    bar.update()
        else:
            for rel, job in zip(todo, jobs, strict=True):
                result[rel] = _job(job)
                bar.update()
        bar.close()
        if cache_file is not None:
            merged = {**cached, **{rel: asdict(fp) for rel, fp in result.items()}}
            payload = {"version": CACHE_VERSION, "hash_size": hash_size, "scans": merged}
            write_atomically(cache_file, json.dumps(payload))  # runs in parallel share it
    return result
