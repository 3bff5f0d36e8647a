"""User-supplied groups (case or patient ids) that must stay within one split."""

from __future__ import annotations

import csv
from pathlib import Path

from braintumor.data.scan import DataError


def read_group_file(path: str | Path) -> dict[str, str]:
    """Read a CSV with columns ``path`` (relative to the data root) and ``group``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"group file '{path}' does not exist (data.group_file).")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not {"path", "group"} <= set(reader.fieldnames or []):
            raise DataError(
                f"group file '{path}' needs the columns 'path,group' (path relative to "
                f"data.root, e.g. 'Meningioma T1/img1.jpeg,patient_17'); found {reader.fieldnames}."
            )
        return {row["path"]: f"user:{row['group']}" for row in reader if row["group"] != ""}
