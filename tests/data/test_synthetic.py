import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from braintumor.data.commands.synthetic import main
from braintumor.data.synthetic import (
    CLASS_CATALOGUE,
    ensure_synthetic_dataset,
    render_scan,
    write_synthetic_dataset,
)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for f in sorted(root.rglob("*.jpeg")):
        h.update(f.relative_to(root).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def test_dataset_is_deterministic_by_seed(tmp_path):
    a = write_synthetic_dataset(
        tmp_path / "a", num_classes=3, per_class=4, seed=1, min_size=32, max_size=48
    )
    b = write_synthetic_dataset(
        tmp_path / "b", num_classes=3, per_class=4, seed=1, min_size=32, max_size=48
    )
    c = write_synthetic_dataset(
        tmp_path / "c", num_classes=3, per_class=4, seed=2, min_size=32, max_size=48
    )
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_layout_names_sizes_and_modes(tmp_path):
    root = write_synthetic_dataset(tmp_path, num_classes=5, per_class=20, min_size=40, max_size=60)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    assert classes == sorted(CLASS_CATALOGUE[:5])
    files = list(root.rglob("*.jpeg"))
    assert len(files) == 100
    sizes = {Image.open(f).size for f in files}
    modes = {Image.open(f).mode for f in files}
    assert all(40 <= w <= 60 and w == h for w, h in sizes) and len(sizes) > 3
    assert modes == {"L", "RGB"}


def test_lesion_classes_differ_from_normal():
    rng = lambda: np.random.default_rng(0)  # noqa: E731  same pose and noise for both
    normal = render_scan("_NORMAL T1", rng(), 128).astype(float)
    tumor = render_scan("Glioblastoma T1C+", rng(), 128).astype(float)
    assert np.abs(normal - tumor).max() > 100  # an enhancing lesion is there


def test_ensure_reuses_and_regenerates(tmp_path):
    root = tmp_path / "demo"
    ensure_synthetic_dataset(root, num_classes=2, per_class=2, min_size=32, max_size=32)
    first = (root / "_NORMAL T1" / "case_0000.jpeg").stat().st_mtime_ns
    ensure_synthetic_dataset(root, num_classes=2, per_class=2, min_size=32, max_size=32)
    assert (root / "_NORMAL T1" / "case_0000.jpeg").stat().st_mtime_ns == first
    ensure_synthetic_dataset(root, num_classes=3, per_class=2, min_size=32, max_size=32)
    assert len([p for p in root.iterdir() if p.is_dir()]) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".demo")]  # no temp left


def test_command_line_writes_dataset(tmp_path, capsys):
    main(
        [
            str(tmp_path / "out"),
            "--classes",
            "3",
            "--per-class",
            "2",
            "--min-size",
            "32",
            "--max-size",
            "32",
        ]
    )
    assert len(list((tmp_path / "out").rglob("*.jpeg"))) == 6
    assert "wrote 3 classes" in capsys.readouterr().out


def test_rejects_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="num_classes"):
        write_synthetic_dataset(tmp_path, num_classes=99)
    with pytest.raises(ValueError, match="per_class"):
        write_synthetic_dataset(tmp_path, per_class=0)
