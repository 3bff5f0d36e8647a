import pytest

from braintumor.data.scan import check_readable, find_classes, scan_class_folders
from braintumor.errors import DataError


def test_junk_files_and_hidden_folders_are_ignored(tiny_copy):
    first = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    before = len(scan_class_folders(tiny_copy))
    for junk in (".DS_Store", "Thumbs.db", "notes.txt", "._case_0000.jpeg"):
        (first / junk).write_bytes(b"junk")
    (tiny_copy / ".hidden_class").mkdir()
    (tiny_copy / "README.txt").write_text("not a class")
    assert len(scan_class_folders(tiny_copy)) == before
    assert ".hidden_class" not in find_classes(tiny_copy)


def test_nested_subfolders_are_scanned(tiny_copy):
    first = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    sub = first / "patient_7"
    sub.mkdir()
    (first / "case_0000.jpeg").rename(sub / "case_0000.jpeg")
    paths = [s.path for s in scan_class_folders(tiny_copy)]
    assert f"{first.name}/patient_7/case_0000.jpeg" in paths


def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"does not exist.*root/<class>"):
        find_classes(tmp_path / "nope")


def test_root_without_class_folders(tmp_path):
    (tmp_path / "a.jpeg").write_bytes(b"x")
    with pytest.raises(DataError, match="holds no class folders"):
        find_classes(tmp_path)


def test_empty_class_folder_is_named(tiny_copy):
    (tiny_copy / "Empty T1").mkdir()
    (tiny_copy / "Empty T1" / "notes.txt").write_text("no images")
    with pytest.raises(DataError, match="Empty T1"):
        scan_class_folders(tiny_copy)


def test_truncated_image_is_detected(tiny_copy):
    path = next(tiny_copy.rglob("*.jpeg"))
    assert check_readable(path) is None
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert check_readable(path) is not None
    path.write_bytes(b"not an image at all")
    assert "UnidentifiedImageError" in check_readable(path)


def test_symlink_loops_are_not_followed_and_are_counted(tiny_copy):
    classes = sorted(p for p in tiny_copy.iterdir() if p.is_dir())
    before = scan_class_folders(tiny_copy)
    first = classes[0]
    (first / "loop").symlink_to("..", target_is_directory=True)  # up to the data root
    (first / "self").symlink_to(".", target_is_directory=True)  # the class folder itself
    (first / "sibling").symlink_to(f"../{classes[1].name}", target_is_directory=True)
    with pytest.warns(UserWarning, match=r"3 folder link\(s\).*loop"):
        after = scan_class_folders(tiny_copy)
    assert after == before  # no image counted twice, none under another class's label


def test_a_link_to_a_folder_outside_the_data_root_is_followed(tiny_copy, tmp_path):
    outside = tmp_path / "elsewhere"
    first = sorted(p for p in tiny_copy.iterdir() if p.is_dir())[0]
    outside.mkdir()
    (first / "case_0000.jpeg").rename(outside / "moved.jpeg")
    (first / "more").symlink_to(outside, target_is_directory=True)
    paths = [s.path for s in scan_class_folders(tiny_copy)]
    assert f"{first.name}/more/moved.jpeg" in paths
