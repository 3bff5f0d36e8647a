"""``braintumor.sweeps.report`` on job folders as runs leave them: finished, failed, killed."""

from __future__ import annotations

import csv
import os

import pytest

from braintumor.errors import UsageError
from braintumor.runs.record import read_run_info, recorded_run, write_run_info
from braintumor.sweeps.report import main, write_sweep_report
from braintumor.sweeps.table import read_job, seed_groups, sort_rows, swept_keys


def _job(sweep, num, status, objective, seed, lr, **extra):
    info = {"status": status, "job": num, "overrides": [f"seed={seed}", f"model.optimizer.lr={lr}"],
            "objective_name": "val/f1_macro_best", "objective": objective, "epochs": 2,
            "metrics": {"val/f1_macro_best": objective, "test/f1_macro": (objective or 0) / 2}
            if objective is not None else {}, "wall_time_s": 3.0, "host": "elsewhere",
            "pid": 1, **extra}  # fmt: skip
    write_run_info(sweep / str(num), info)


def test_recorded_run_marks_completed_failed_and_nan(tmp_path):
    with recorded_run(tmp_path / "ok", ["seed=1"], "val/f1_macro_best", 0) as record:
        assert read_run_info(tmp_path / "ok")["status"] == "running"
        assert record.finish({"val/f1_macro_best": 0.5, "epoch": 3.0}) == 0.5
    ok = read_run_info(tmp_path / "ok")
    assert ok["status"] == "completed" and ok["epochs"] == 3 and ok["wall_time_s"] >= 0
    with pytest.raises(RuntimeError), recorded_run(tmp_path / "bad", [], "val/f1_macro_best"):
        raise RuntimeError("boom")
    bad = read_run_info(tmp_path / "bad")
    assert bad["status"] == "failed" and bad["error"] == "RuntimeError: boom"
    with recorded_run(tmp_path / "nan", [], "val/f1_macro_best") as record:
        assert record.finish({"val/f1_macro_best": float("nan")}) is None
    assert read_run_info(tmp_path / "nan")["status"] == "failed"


def test_report_reads_partial_failed_and_killed_sweeps(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    _job(sweep, 0, "completed", 0.6, 1, 0.001)
    _job(sweep, 1, "failed", None, 1, 10.0, error="FloatingPointError: training loss is nan")
    _job(sweep, 2, "completed", 0.8, 2, 0.001)
    _job(sweep, 3, "running", None, 2, 0.01, host=os.uname().nodename, pid=2**22 + 12345)
    (sweep / "4" / ".hydra").mkdir(parents=True)  # killed before it wrote run_info.json
    (sweep / "4" / ".hydra" / "overrides.yaml").write_text("- seed=3\n- model.optimizer.lr=0.1\n")
    main([str(sweep)])
    printed = capsys.readouterr().out
    assert "best job: 2" in printed
    rows = list(csv.DictReader((sweep / "sweep_summary.csv").open()))
    assert [r["job"] for r in rows] == ["2", "0", "1", "3", "4"]  # best first, then the rest
    assert [r["status"] for r in rows] == ["completed", "completed", "failed", "interrupted",
                                           "unknown"]  # fmt: skip
    assert rows[2]["error"].startswith("FloatingPointError")
    assert {"seed", "model.optimizer.lr", "val/f1_macro_best", "test/f1_macro", "epochs",
            "wall_time_s"} <= set(rows[0])  # fmt: skip
    assert (sweep / "sweep_summary.png").stat().st_size > 5_000
    assert "| 1 | 2 | completed | 0.8 |" in (sweep / "sweep_summary.md").read_text()


def test_seed_summary_has_mean_and_std_per_metric(tmp_path):
    sweep = tmp_path / "seeds"
    for num, (seed, value) in enumerate([(1, 0.5), (2, 0.7), (3, 0.9)]):
        _job(sweep, num, "completed", value, seed, 0.001)
    result = write_sweep_report(sweep, out=tmp_path / "out")
    (group,) = seed_groups(result["rows"])
    assert sorted(group["seeds"]) == ["1", "2", "3"]
    stat = group["metrics"]["val/f1_macro_best"]
    assert stat["mean"] == pytest.approx(0.7) and stat["std"] == pytest.approx(0.2)
    text = (tmp_path / "out" / "seed_summary.md").read_text()
    assert "| val/f1_macro_best | 0.7000 ± 0.2000 |" in text
    assert (tmp_path / "out" / "seed_summary.csv").is_file()


def test_sorting_and_swept_keys_follow_the_direction(tmp_path):
    sweep = tmp_path / "s"
    _job(sweep, 0, "completed", 0.2, 1, 0.001)
    _job(sweep, 1, "completed", 0.1, 1, 0.01)
    rows = [read_job(sweep / "0"), read_job(sweep / "1")]
    assert [r["job"] for r in sort_rows(rows, maximize=False)] == [1, 0]
    assert [r["job"] for r in sort_rows(rows, maximize=True)] == [0, 1]
    assert swept_keys(rows) == ["model.optimizer.lr"]  # seed is the same everywhere


def test_report_on_a_missing_or_empty_folder_fails_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main([str(tmp_path / "nope")])
    with pytest.raises(FileNotFoundError, match="no job folders"):
        main([str(tmp_path)])


def test_a_sweep_recorded_with_the_old_metric_names_is_reported_under_the_new_ones(tmp_path):
    sweep = tmp_path / "old"
    for num, value in enumerate([0.4, 0.6]):
        write_run_info(sweep / str(num), {
            "status": "completed", "job": num, "overrides": [f"seed={num}"],
            "objective_name": "val/f1_best", "objective": value,
            "metrics": {"val/f1_best": value, "val/f1": value, "val/acc": 0.5,
                        "train/acc": 0.7, "test/f1_macro": value / 2}})  # fmt: skip
    result = write_sweep_report(sweep)
    assert result["metric"] == "val/f1_macro_best" and result["best_job"] == 1
    columns = next(csv.reader((sweep / "sweep_summary.csv").open()))
    assert {"val/f1_macro_best", "val/f1_macro", "val/accuracy", "train/accuracy"} <= set(columns)
    assert not {"val/f1_best", "val/f1", "val/acc", "train/acc"} & set(columns)
    assert write_sweep_report(sweep, metric="val/f1_best")["metric"] == "val/f1_macro_best"
    with pytest.raises(UsageError, match="now called val/f1_macro_best"):  # a new run
        recorded_run(tmp_path / "new", [], "val/f1_best").__enter__()
