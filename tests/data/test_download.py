"""The 44-class download: a manual archive installs offline; no credentials or no network
fail at once with the manual instructions. Nothing here touches the network."""

import zipfile

import pytest

from braintumor.data import download as dl
from braintumor.errors import DataError


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))


def test_archive_with_wrapper_folder_installs_class_folders(tiny_root, tmp_path):
    archive = tmp_path / "archive.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in tiny_root.rglob("*.jpeg"):
            z.write(f, f"Brain Tumor 44c/{f.relative_to(tiny_root).as_posix()}")
    out = dl.download(tmp_path / "brain44c", archive=archive)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        p.name for p in tiny_root.iterdir() if p.is_dir()
    )
    assert len(list(out.rglob("*.jpeg"))) == len(list(tiny_root.rglob("*.jpeg")))


def test_existing_output_is_not_overwritten(tiny_root, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty"):
        dl.download(tmp_path / "out", archive=tiny_root)


def test_not_a_zip(tmp_path):
    bad = tmp_path / "archive.zip"
    bad.write_text("html error page")
    with pytest.raises(DataError, match="not a zip"):
        dl.download(tmp_path / "out", archive=bad)


def test_without_credentials_fails_with_manual_instructions(no_credentials, tmp_path):
    with pytest.raises(
        DataError, match=r"no Kaggle credentials(.|\n)*ARCHIVE=/path/to/archive.zip"
    ):
        dl.download(tmp_path / "out")


def test_offline_fails_at_once(no_credentials, monkeypatch, tmp_path):
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "secret")
    # a closed port on this machine stands in for the unreachable Kaggle host
    with pytest.raises(DataError, match=r"offline(.|\n)*Manual download"):
        dl.download(tmp_path / "out", probe=("127.0.0.1", 9))


def test_command_line_reports_errors_cleanly(no_credentials, tmp_path):
    with pytest.raises(SystemExit, match="error: no Kaggle credentials"):
        dl.main(["--out", str(tmp_path / "out")])
