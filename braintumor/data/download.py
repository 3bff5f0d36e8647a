"""Fetch a public set, from Kaggle, from its own URL, or from an archive downloaded by hand.

``python -m braintumor download [NAME] --out data/NAME`` (NAME: brain44c, the default,
brain17c, nickparvar4, figshare3, br35h) uses the Kaggle client (``kagglehub``) and your
Kaggle credentials, or the set's URL (figshare3); ``--archive archive.zip`` (or a folder)
installs a copy you downloaded elsewhere, with no network at all. Offline or without
credentials the command stops at once and says how to do the manual download.
"""

from __future__ import annotations

import os
import socket
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

from braintumor.data.public_sets import PUBLIC_SETS, PublicSet
from braintumor.data.sources import layout_of
from braintumor.errors import DataError

MAKE_TARGETS = {"brain44c": "download-44c"}  # the sets with a make target of their own


def manual(public: PublicSet) -> str:
    """How to download ``public`` by hand and install it offline."""
    where = "(a free Kaggle account is needed), click 'Download'" if public.kaggle else (
        "and click 'Download all'")  # fmt: skip
    target = MAKE_TARGETS.get(public.name)
    make = f"  make {target} ARCHIVE=/path/to/archive.zip\n(or: " if target else "  "
    close = ")" if target else ""
    return (
        f"Manual download: open {public.page} in a browser {where} to get the zip archive, "
        f"copy it to this machine and run\n{make}python -m braintumor download {public.name} "
        f"--archive /path/to/archive.zip --out data/{public.name}{close}."
    )


def has_kaggle_credentials() -> bool:
    """True when the Kaggle client can authenticate (environment or kaggle.json)."""
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return (config / "kaggle.json").is_file() or (config / "access_token").is_file()


def can_reach(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    """True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def install(source: Path, out: Path, public: PublicSet = PUBLIC_SETS["brain44c"]) -> Path:
    """Copy ``public``'s files found in ``source`` (zip archive or folder) to ``out``, as its
    layout's reader installs them (its class folders, its train/test folders, its slices)."""
    if out.exists() and any(out.iterdir()):
        raise DataError(f"'{out}' already exists and is not empty; remove it or pick --out.")
    reader = layout_of(public.layout).module()
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise DataError(
                    f"'{source}' is not a zip archive; pass the downloaded zip or a folder."
                )
            with zipfile.ZipFile(source) as archive:
                archive.extractall(tmp)
            base, writable = Path(tmp), True
        elif source.is_dir():
            base, writable = source, False
        else:
            raise DataError(f"'{source}' does not exist. {manual(public)}")
        out.parent.mkdir(parents=True, exist_ok=True)
        reader.install(base, out, writable)
    return out


def fetch_url(public: PublicSet, out: Path, probe: tuple[str, int] | None) -> Path:
    """Download ``public``'s archive from its URL (no credentials) and install it."""
    host = probe or (urllib.parse.urlparse(public.urls[0]).hostname or "", 443)
    if not can_reach(*host):
        raise DataError(
            f"cannot reach {host[0]}:{host[1]}: this machine looks offline.\n{manual(public)}"
        )
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive.zip"
        try:
            urllib.request.urlretrieve(public.urls[0], archive)
        except OSError as error:
            raise DataError(
                f"download of {public.urls[0]} failed: {error}\n{manual(public)}"
            ) from error
        return install(archive, out, public)


def download(
    out: Path,
    archive: Path | None = None,
    probe: tuple[str, int] | None = None,
    name: str = "brain44c",
) -> Path:
    """Install the set ``name`` into ``out`` from ``archive``, or download it (kagglehub, or
    the set's URL); ``probe`` is the host checked for a connection first."""
    if name not in PUBLIC_SETS:
        raise DataError(f"unknown set '{name}'; one of {', '.join(PUBLIC_SETS)}.")
    public = PUBLIC_SETS[name]
    how = manual(public)
    if archive is not None:
        return install(archive, out, public)
    if public.kaggle is None:
        return fetch_url(public, out, probe)
    probe = probe or ("www.kaggle.com", 443)
    if not has_kaggle_credentials():
        raise DataError(
            "no Kaggle credentials found (KAGGLE_USERNAME + KAGGLE_KEY, or ~/.kaggle/kaggle.json;"
            f" see https://www.kaggle.com/docs/api).\n{how}"
        )
    if not can_reach(*probe):
        raise DataError(f"cannot reach {probe[0]}:{probe[1]}: this machine looks offline.\n{how}")
    import kagglehub  # imported late: only this path needs it

    try:
        path = Path(kagglehub.dataset_download(public.kaggle))
    except Exception as error:  # the client raises many types (HTTP, auth, ...)
        raise DataError(
            f"Kaggle download failed: {type(error).__name__}: {error}\n{how}"
        ) from error
    return install(path, out, public)
