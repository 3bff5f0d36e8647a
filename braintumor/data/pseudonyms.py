"""Pseudonyms for studies and patients: a salted SHA-256 of their DICOM uid or id, so that
splits, reports and answers can name a case without naming the patient.

The salt is made once per installation (``~/.config/braintumor/study_salt``, mode 0600, or the
file the environment variable ``BRAINTUMOR_STUDY_SALT_FILE`` names) and never written anywhere
else: without it a pseudonym cannot be traced back by hashing known ids.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

SALT_ENV = "BRAINTUMOR_STUDY_SALT_FILE"


def salt_file() -> Path:
    return Path(os.environ.get(SALT_ENV) or Path.home() / ".config" / "braintumor" / "study_salt")


def study_salt() -> bytes:
    """This installation's secret salt, made on first use."""
    path = salt_file()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # made meanwhile by another process
            return path.read_bytes().strip()
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_bytes().strip()


def pseudonym(uid: str, salt: bytes, kind: str = "study") -> str:
    """``<kind>-<16 hex>``: the salted SHA-256 of ``uid``."""
    return f"{kind}-" + hashlib.sha256(salt + b"|" + uid.encode()).hexdigest()[:16]
