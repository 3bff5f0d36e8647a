"""Fetch the public 44-class set, from Kaggle or from an archive downloaded by hand.

``python -m braintumor download --out data/brain44c`` uses the Kaggle client
(``kagglehub``) and your Kaggle credentials; ``--archive archive.zip`` (or a folder) installs a
copy you downloaded elsewhere, with no network at all. Offline or without credentials the
command stops at once and says how to do the manual download.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import tempfile
import zipfile
from pathlib import Path

from braintumor.data.scan import find_classes, is_scan_file
from braintumor.errors import DataError

DATASET = "fernando2rad/brain-tumor-mri-images-44c"
PAGE = f"https://www.kaggle.com/datasets/{DATASET}"
MANUAL = (
    f"Manual download: open {PAGE} in a browser (a free Kaggle account is needed), click "
    "'Download' to get the zip archive, copy it to this machine and run\n"
    "  make download-44c ARCHIVE=/path/to/archive.zip\n"
    "(or: python -m braintumor download --archive /path/to/archive.zip --out data/brain44c)."
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


def find_class_root(base: Path) -> Path:
    """The folder under ``base`` (itself included, 4 levels deep) with the most subfolders
    that directly hold images: archives often wrap the class folders in one more folder."""
    best, best_count = None, 0
    for dirpath, dirnames, _ in os.walk(base):
        depth = len(Path(dirpath).relative_to(base).parts)
        if depth > 4:
            dirnames[:] = []
            continue
        count = sum(
            1 for d in dirnames if any(is_scan_file(f) for f in os.listdir(Path(dirpath) / d)[:50])
        )
        if count > best_count:
            best, best_count = Path(dirpath), count
    if best is None:
        raise DataError(f"no class folders with images found under '{base}'.")
    return best


def install(source: Path, out: Path) -> Path:
    """Copy the class folders found in ``source`` (zip archive or folder) to ``out``."""
    if out.exists() and any(out.iterdir()):
        raise DataError(f"'{out}' already exists and is not empty; remove it or pick --out.")
    with tempfile.TemporaryDirectory() as tmp:
        if source.is_file():
            if not zipfile.is_zipfile(source):
                raise DataError(
                    f"'{source}' is not a zip archive; pass the Kaggle zip or a folder."
                )
            with zipfile.ZipFile(source) as archive:
                archive.extractall(tmp)
            base = Path(tmp)
        elif source.is_dir():
            base = source
        else:
            raise DataError(f"'{source}' does not exist. {MANUAL}")
        root = find_class_root(base)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(root, out, dirs_exist_ok=True)
    return out


def download(
    out: Path, archive: Path | None = None, probe: tuple[str, int] = ("www.kaggle.com", 443)
) -> Path:
    """Install the dataset into ``out`` from ``archive``, or download it with kagglehub."""
    if archive is not None:
        return install(archive, out)
    if not has_kaggle_credentials():
        raise DataError(
            "no Kaggle credentials found (KAGGLE_USERNAME + KAGGLE_KEY, or ~/.kaggle/kaggle.json;"
            f" see https://www.kaggle.com/docs/api).\n{MANUAL}"
        )
    if not can_reach(*probe):
        raise DataError(
            f"cannot reach {probe[0]}:{probe[1]}: this machine looks offline.\n{MANUAL}"
        )
    import kagglehub  # imported late: only this path needs it

    try:
        path = Path(kagglehub.dataset_download(DATASET))
    except Exception as error:  # the client raises many types (HTTP, auth, ...)
        raise DataError(
            f"Kaggle download failed: {type(error).__name__}: {error}\n{MANUAL}"
        ) from error
    return install(path, out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m braintumor download", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--out", type=Path, default=Path("data/brain44c"), help="where the class folders go"
    )
    parser.add_argument(
        "--archive", type=Path, default=None, help="a manually downloaded zip (or folder)"
    )
    args = parser.parse_args(argv)
    try:
        out = download(args.out, args.archive)
    except DataError as error:
        raise SystemExit(f"error: {error}") from None
    classes = find_classes(out)
    n_images = sum(1 for p in out.rglob("*") if p.is_file() and is_scan_file(p.name))
    print(f"{n_images} images in {len(classes)} class folders at {out}")
    print(f"next: python -m braintumor audit {out}")
    print(f"      python train.py data=brain44c data.root={out}")


if __name__ == "__main__":
    main()
