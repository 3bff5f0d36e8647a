"""The 44-class download: a manual archive installs offline; no credentials or no network
fail at once with the manual instructions. Nothing here touches the network."""

import zipfile

import pytest

from braintumor.data import download as dl
from braintumor.data.commands import download as command
from braintumor.errors import DataError
from tests.data.public_sets import write_br35h, write_figshare, write_nickparvar


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


def test_command_line_reports_errors_cleanly(no_credentials, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        command.main(["--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert error.startswith("error: no Kaggle credentials") and error.count("\n") == 1


def _zip_folder(folder, archive, prefix):
    with zipfile.ZipFile(archive, "w") as z:
        for f in folder.rglob("*"):
            if f.is_file():
                z.write(f, f"{prefix}/{f.relative_to(folder).as_posix()}")
    return archive


def test_nickparvar_archive_installs_training_and_testing(tmp_path):
    write_nickparvar(tmp_path / "src", train=2, test=1)
    archive = _zip_folder(tmp_path / "src", tmp_path / "a.zip", "brain-tumor-mri-dataset")
    out = dl.download(tmp_path / "nick", archive=archive, name="nickparvar4")
    assert sorted(p.name for p in out.iterdir()) == ["Testing", "Training"]
    assert len(list(out.rglob("*.jpg"))) == 12


def test_figshare_article_zip_of_zips_installs_the_slices_flat(tmp_path):
    slices = tmp_path / "slices"
    write_figshare(slices, patients=2, per_patient=2)
    article = tmp_path / "article"
    article.mkdir()
    for part, names in (("1-2", ["1.mat", "2.mat"]), ("3-4", ["3.mat", "4.mat"])):
        with zipfile.ZipFile(article / f"brainTumorDataPublic_{part}.zip", "w") as z:
            for name in names:
                z.write(slices / name, name)
    (article / "cvind.mat").write_bytes((slices / "cvind.mat").read_bytes())
    archive = _zip_folder(article, tmp_path / "1512427.zip", ".")
    out = dl.download(tmp_path / "figshare3", archive=archive, name="figshare3")
    assert sorted(p.name for p in out.iterdir()) == ["1.mat", "2.mat", "3.mat", "4.mat"]


def test_br35h_archive_keeps_its_folders(tmp_path):
    write_br35h(tmp_path / "src", per_class=2)
    out = dl.download(tmp_path / "br35h", archive=tmp_path / "src", name="br35h")
    assert sorted(p.name for p in out.iterdir()) == ["no", "pred", "yes"]  # pred: not read


def test_figshare_offline_fails_at_once_with_the_manual_way(tmp_path):
    with pytest.raises(DataError, match=r"offline(.|\n)*download figshare3 --archive"):
        dl.download(tmp_path / "out", name="figshare3", probe=("127.0.0.1", 9))


def test_unknown_set_is_named(tmp_path):
    with pytest.raises(DataError, match="unknown set 'brats'"):
        dl.download(tmp_path / "out", name="brats")
    with pytest.raises(SystemExit):
        command.main(["brats"])
