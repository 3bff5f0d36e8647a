"""A user's mistake on ``python train.py``: one line on stderr, exit code 2, no traceback, and
for the config and its paths, an answer before torch is imported."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from braintumor.data.synthetic import ensure_synthetic_dataset
from braintumor.errors import USAGE, DataError, UsageError, fail, one_line
from braintumor.pipeline.config_check import check_command_line, check_config

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"


def test_fail_prints_the_message_on_one_line_and_exits_with_the_usage_code(capsys):
    assert one_line(DataError("no  class\nfolders")) == "error: no class folders"
    with pytest.raises(SystemExit) as exit_info:
        fail(UsageError("a\n  b"))
    assert exit_info.value.code == USAGE == 2
    assert capsys.readouterr().err == "error: a b\n"


def train_py(tmp_path: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``python train.py ARGS`` with its outputs and caches in ``tmp_path``."""
    cmd = [sys.executable, str(ROOT / "train.py"), *args, f"paths.log_dir={tmp_path / 'out'}",
           f"paths.cache_dir={tmp_path / 'cache'}"]  # fmt: skip
    full_env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run(
        cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300, env=full_env
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *words: str) -> str:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_a_wrong_data_root_is_answered_before_torch_is_imported(tmp_path):
    missing = tmp_path / "no_such_folder"
    result = train_py(tmp_path, "data=folder", f"data.root={missing}")
    assert_one_line_error(result, str(missing), "does not exist", "data.root")
    imports = train_py(
        tmp_path, "data=folder", f"data.root={missing}", env={"PYTHONPROFILEIMPORTTIME": "1"}
    )
    imported = {
        line.rsplit("|", 1)[-1].strip() for line in imports.stderr.splitlines() if "|" in line
    }
    assert "omegaconf" in imported and not {"torch", "lightning", "numpy"} & imported


def test_a_dataset_without_its_root_names_the_missing_setting(tmp_path):
    result = train_py(tmp_path, "data=brain44c")
    assert_one_line_error(result, "data.root", "data=brain44c")
    assert "MissingMandatoryValue" not in result.stderr


def test_an_unknown_model_lists_the_available_ones(tmp_path):
    result = train_py(tmp_path, "model=finetune")
    assert_one_line_error(result, "unknown model 'finetune'", "backbone, cnn")
    result = train_py(tmp_path, "-m", "model=cnn,finetune")  # one option of a multirun
    assert_one_line_error(result, "'finetune'")


def test_a_wrong_number_is_blamed_on_its_setting(tmp_path):
    result = train_py(tmp_path, "data.image_size=abc")
    line = assert_one_line_error(result, "data.image_size='abc'", "whole number")
    assert "transforms" not in line


def test_evaluation_without_a_checkpoint_says_what_to_add(tmp_path):
    assert_one_line_error(train_py(tmp_path, "train=false"), "ckpt_path=")
    missing = tmp_path / "gone.ckpt"
    assert_one_line_error(train_py(tmp_path, f"ckpt_path={missing}"), str(missing))


def test_an_error_found_after_the_imports_is_one_line_too(tmp_path):
    """A root that exists but holds no class folders is found by the data stages, after torch
    is imported: still one line and exit code 2; HYDRA_FULL_ERROR=1 shows the traceback."""
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ("data=folder", f"data.root={empty}", "logger=none")
    assert_one_line_error(train_py(tmp_path, *args), "holds no class folders")
    full = train_py(tmp_path, *args, env={"HYDRA_FULL_ERROR": "1"})
    assert full.returncode != 0 and "Traceback" in full.stderr and "DataError" in full.stderr


def test_the_demo_never_replaces_a_folder_of_other_files(tmp_path):
    mine = tmp_path / "my_scans"
    (mine / "Meningioma T1").mkdir(parents=True)
    (mine / "Meningioma T1" / "scan.jpg").write_bytes(b"mine")
    result = train_py(tmp_path, f"data.root={mine}")  # data=demo, the default
    assert_one_line_error(result, "data=folder", str(mine))
    with pytest.raises(DataError, match="not a demo dataset"):
        ensure_synthetic_dataset(mine, num_classes=2, per_class=1)
    assert (mine / "Meningioma T1" / "scan.jpg").read_bytes() == b"mine"


def test_the_command_line_check_leaves_sweeps_and_hydra_groups_to_hydra():
    ok = ["model=backbone", "-m", "model=cnn,backbone", "data=folder", "data.root=/x",
          "model=choice(cnn,backbone)", "hydra/launcher=joblib", "+experiment=quick_cpu",
          "experiment=null", "--cfg", "job", "~logger", "seed=1,2"]  # fmt: skip
    check_command_line(ok, CONF_DIR)
    with pytest.raises(UsageError, match=r"unknown experiment 'quick_gpu'.*quick_cpu"):
        check_command_line(["experiment=quick_gpu"], CONF_DIR)
    check_command_line(["-cd", "/elsewhere", "model=mine"], CONF_DIR)  # another config folder


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "data.batch_size=0: expected a whole number >= 1"),
        ("data.val_fraction=1.5", "data.val_fraction=1.5: expected a number in [0, 1)"),
        ("data.channels=2", "data.channels=2: expected one of 1, 3"),
        ("model.optimizer.lr=-1", "model.optimizer.lr=-1: expected a number > 0"),
        ("trainer.max_epochs=ten", "trainer.max_epochs='ten'"),
    ],
)
def test_numbers_of_the_wrong_kind_are_named(compose, tmp_path, override, message):
    cfg = compose(["data=folder", f"data.root={tmp_path}", override])
    with pytest.raises(UsageError) as error:
        check_config(cfg)
    assert str(error.value).startswith(message)


def test_the_default_config_and_its_files_pass(compose, tmp_path, tiny_root):
    check_config(compose([]))
    split = tmp_path / "split.csv"
    split.write_text("path,split\n")
    check_config(compose(["data=folder", f"data.root={tiny_root}", f"data.split_file={split}"]))
    with pytest.raises(DataError, match=r"data\.group_file="):
        check_config(compose(["data=folder", f"data.root={tiny_root}", "data.group_file=/no.csv"]))


def test_a_failed_job_of_a_multirun_is_one_line_and_the_others_run(tmp_path, tiny_root):
    empty = tmp_path / "empty"
    empty.mkdir()
    sweep = tmp_path / "sweep"
    result = train_py(
        tmp_path, "-m", "data=folder", f"data.root={empty},{tiny_root}", "data.image_size=32",
        "model.net.widths=[8,16]", "trainer.max_epochs=1", "logger=none", "test=false",
        "data.num_workers=0", "trainer.enable_progress_bar=false", f"hydra.sweep.dir={sweep}",
    )  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr + result.stdout
    assert f"error: data root '{empty}' holds no class folders" in result.stderr
    assert '"status": "completed"' in (sweep / "1" / "run_info.json").read_text()
    assert '"status": "failed"' in (sweep / "0" / "run_info.json").read_text()


def test_help_and_printing_a_config_are_not_checked(tmp_path):
    """``--help`` and ``--cfg job`` never run the job: a config with ``???`` still prints."""
    shown = train_py(tmp_path, "--cfg", "job", "data=brain44c")
    assert shown.returncode == 0 and "root: ???" in shown.stdout, shown.stderr[-2000:]
    helped = train_py(tmp_path, "--help")
    assert helped.returncode == 0 and "model: backbone, cnn" in helped.stdout


def test_several_sets_need_each_named_root(compose, tmp_path):
    there = tmp_path / "figshare3"
    there.mkdir()
    merged = [
        "data=merged",
        "data.sources=[figshare3,nickparvar4]",
        f"data.roots.figshare3={there}",
    ]
    with pytest.raises(DataError, match=r"data\.roots\.nickparvar4=.*download nickparvar4"):
        check_config(compose([*merged, f"data.roots.nickparvar4={tmp_path / 'absent'}"]))
    check_config(compose([*merged, f"data.roots.nickparvar4={there}"]))
    with pytest.raises(UsageError, match=r"data\.root is not set \(data=folder\)"):
        check_config(compose(["data=folder", "data.root=null"]), {"data": "folder"})


def test_the_config_check_and_the_datamodule_share_one_declaration_of_the_data_constraints():
    from braintumor.data.parameters import CONSTRAINTS
    from braintumor.pipeline.config_check import NUMBERS

    data_keys = [key for key in NUMBERS if key.startswith("data.")]
    assert data_keys and all(
        NUMBERS[k][0] is CONSTRAINTS[k.removeprefix("data.")] for k in data_keys
    )
