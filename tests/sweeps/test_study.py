"""Where a study lives: storage specs, a sweep folder's study, the dashboard serving it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import optuna
import pytest

from braintumor.errors import UsageError
from braintumor.sweeps.study import (
    build_pruner,
    open_storage,
    redact,
    storage_of,
    sweep_study,
    write_study_file,
)
from tests.conftest import free_port


def _study(spec: str, name: str = "s") -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=name, storage=open_storage(spec), direction="maximize")
    for x in (0.2, 0.7):
        trial = study.ask()
        trial.suggest_float("lr", 1e-4, 1e-2, log=True)
        study.tell(trial, x)
    return study


def test_a_journal_file_and_a_sqlite_url_hold_the_same_study(tmp_path):
    for spec in (str(tmp_path / "j" / "optuna.journal"), f"sqlite:///{tmp_path / 'd' / 'o.db'}"):
        _study(spec)  # parent folders are created
        again = optuna.load_study(study_name="s", storage=open_storage(spec))
        assert [t.value for t in again.trials] == [0.2, 0.7], spec


def test_a_sweep_folder_names_its_study_without_the_password(tmp_path):
    journal = tmp_path / "shared" / "optuna.journal"
    _study(str(journal), "mine")
    write_study_file(tmp_path / "sweep", "mine", str(journal))
    assert sweep_study(tmp_path / "sweep") == ("mine", str(journal))
    assert storage_of(str(tmp_path / "sweep")) == str(journal)
    url = "postgresql+psycopg://lab:s3cret@db.cluster:5432/optuna"
    assert redact(url) == "postgresql+psycopg://lab:***@db.cluster:5432/optuna"
    write_study_file(tmp_path / "pg", "x", url)
    assert "s3cret" not in (tmp_path / "pg" / "optuna_study.yaml").read_text()
    assert storage_of(url) == url  # a URL is taken as it is


def test_files_are_recognised_and_nothing_is_refused_clearly(tmp_path):
    _study(f"sqlite:///{tmp_path / 'a.db'}")
    assert storage_of(str(tmp_path / "a.db")) == f"sqlite:///{tmp_path / 'a.db'}"
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="holds no Optuna study"):
        storage_of(str(tmp_path / "empty"))
    with pytest.raises(UsageError, match="no study at"):
        storage_of(str(tmp_path / "missing.db"))
    with pytest.raises(UsageError, match="choose one of: none, median"):
        build_pruner("medain", {"none": {"_target_": "optuna.pruners.NopPruner"},
                                "median": {"_target_": "optuna.pruners.MedianPruner"}})  # fmt: skip


def test_the_dashboard_serves_the_study_of_a_sweep_folder_on_localhost(tmp_path):
    pytest.importorskip("optuna_dashboard", reason="pip install 'braintumor[tracking]'")
    sweep = tmp_path / "outputs" / "optuna" / "cnn"
    _study(f"sqlite:///{sweep / 'optuna.db'}", "cnn")
    port = free_port()
    cmd = [sys.executable, "-m", "braintumor.sweeps.dashboard", str(sweep), "--port", str(port)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        studies = None
        for _ in range(240):  # up to ~60 s to start on a busy machine
            assert server.poll() is None, server.communicate()[0][-2000:]
            try:
                url = f"http://127.0.0.1:{port}/api/studies"
                studies = json.load(urllib.request.urlopen(url, timeout=5))
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.25)
        assert studies is not None, "the dashboard never answered"
        (study,) = studies["study_summaries"]
        assert study["study_name"] == "cnn" and study["directions"] == ["maximize"]
        url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}"
        detail = json.load(urllib.request.urlopen(url, timeout=30))
        assert [t["values"] for t in detail["trials"]] == [[0.2], [0.7]]
    finally:
        server.terminate()
        server.wait(timeout=30)
