"""Each layout declared once (``braintumor.data.sources.LAYOUTS``), its reader complete."""

import pytest

from braintumor.data.public_sets import PUBLIC_SETS
from braintumor.data.sources import LAYOUTS, detect_layout, reader_for, scan_source
from braintumor.errors import DataError
from tests.data.public_sets import write_figshare, write_nickparvar


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_layout_has_a_reader_with_the_functions_a_reader_has(name):
    reader = LAYOUTS[name].module()
    assert all(callable(getattr(reader, f)) for f in ("scan", "install", "detect", "describe"))
    assert all(callable(reader.read_image) for _ in LAYOUTS[name].file_endings)


def test_every_public_set_names_a_declared_layout():
    assert {s.layout for s in PUBLIC_SETS.values()} <= set(LAYOUTS)


def test_layouts_are_detected_from_the_files(tiny_root, tmp_path):
    write_nickparvar(tmp_path / "np", train=2, test=1)
    write_figshare(tmp_path / "fs", patients=2, per_patient=1)
    found = [detect_layout(p) for p in (tiny_root, tmp_path / "np", tmp_path / "fs")]
    assert found == ["folder", "presplit", "figshare"]
    with pytest.raises(DataError, match="does not exist"):
        detect_layout(tmp_path / "nothing")


def test_one_scan_gives_the_splits_of_presplit_folders_and_the_patients_of_slices(tmp_path):
    write_nickparvar(tmp_path / "np", train=2, test=1)
    presplit = scan_source(tmp_path / "np", "presplit")
    assert set(presplit.splits) == {"train", "test"} and presplit.patients is None
    write_figshare(tmp_path / "fs", patients=2, per_patient=2)
    slices = scan_source(tmp_path / "fs", "figshare", "figshare3")
    assert len(set(slices.patients)) == 2 and slices.splits is None
    assert reader_for("x/1.MAT") is LAYOUTS["figshare"].module() and reader_for("a.png") is None
