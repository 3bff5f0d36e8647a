"""What a run prints: a summary in 80 columns, an epoch bar with val/f1 and without v_num on a
terminal, plain lines (no carriage returns, no escape codes) anywhere else, and log lines
that never run into a bar."""

from __future__ import annotations

import fcntl
import io
import logging
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from tqdm import tqdm

from braintumor.console import ConsoleHandler
from braintumor.evaluation.summary import format_metrics_table

ROOT = Path(__file__).resolve().parents[1]
TINY = ["data=folder", "data.image_size=32", "data.batch_size=16", "data.num_workers=0",
        "model.net.widths=[8,16]", "trainer.max_epochs=2", "trainer.accelerator=cpu",
        "trainer.num_sanity_val_steps=0", "logger=none", "~callbacks.lr_monitor",
        "~callbacks.augmented_samples", "eval.bootstrap=0"]  # fmt: skip


def _command(tmp_path: Path, root: Path) -> list[str]:
    run, cache = tmp_path / "run", tmp_path / "cache"
    return [sys.executable, str(ROOT / "train.py"), *TINY, f"data.root={root}",
            f"hydra.run.dir={run}", f"paths.cache_dir={cache}"]  # fmt: skip


def test_the_summary_fits_80_columns_and_says_macro():
    split = {"accuracy": 0.9123, "accuracy_tumor_type": 0.95, "precision_macro": 0.9,
             "recall_macro": 0.9, "f1_macro": 0.9, "ece": 0.03, "n": 4479,
             "ci95": {"accuracy": [0.8811, 0.9404], "f1_macro": [0.85, 0.95]},
             "ci_method": "bootstrap over cases (40 groups), 1000 resamples"}  # fmt: skip
    table = format_metrics_table({"val": split, "test": split})
    lines = table.splitlines()
    assert max(map(len, lines)) <= 80
    assert "macro" in lines[0] and "tumor type" in lines[0]
    assert lines[1].split() == ["accuracy", "accuracy", "precision", "recall", "f1", "ece", "n"]
    assert lines[2].split() == ["val", "0.9123", "0.9500", "0.9000", "0.9000", "0.9000",
                                "0.0300", "4479"]  # fmt: skip
    # the group row spans exactly the three macro columns
    start, end = lines[0].index("-"), lines[0].rindex("-") + 1
    assert lines[1][start:end].split() == ["precision", "recall", "f1"]


def test_log_lines_are_written_above_a_progress_bar_not_into_it():
    stream = io.StringIO()
    bar = tqdm(total=10, file=stream, ncols=60, mininterval=0)
    bar.update(3)
    logger = logging.getLogger("test_terminal.console")
    handler = ConsoleHandler(stream)
    logger.addHandler(handler)
    try:
        logger.warning("a log line")
    finally:
        logger.removeHandler(handler)
        bar.close()
    line = next(part for part in stream.getvalue().split("\n") if "a log line" in part)
    assert line.rsplit("\r", 1)[-1] == "a log line"  # the bar was cleared first


def test_plain_lines_when_stdout_is_not_a_terminal(tmp_path, tiny_root):
    result = subprocess.run(
        _command(tmp_path, tiny_root), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    out, err = result.stdout, result.stderr
    assert result.returncode == 0, out[-2000:] + err[-2000:]
    log_file = (tmp_path / "run" / "train.log").read_text()
    for text in (out, err, log_file):
        assert "\r" not in text and "\x1b" not in text and "v_num" not in text
    epochs = [line for line in out.splitlines() if line.startswith("Epoch ")]
    assert [line.split()[:3] for line in epochs] == [["Epoch", "0", "val/f1"],
                                                     ["Epoch", "1", "val/f1"]]  # fmt: skip
    assert all("val/loss" in line and "  loss " in line for line in epochs)
    assert sum("Epoch 1  val/f1" in line for line in log_file.splitlines()) == 1
    assert "searchsorted" not in out + err  # torchmetrics' noise is filtered


@pytest.mark.slow
def test_the_epoch_bar_on_a_terminal_shows_val_f1_in_80_columns(tmp_path, tiny_root):
    parent, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    chunks: list[bytes] = []
    errors = tmp_path / "stderr.txt"
    try:
        with errors.open("wb") as stderr:
            proc = subprocess.Popen(
                _command(tmp_path, tiny_root), cwd=tmp_path, stdout=child, stderr=stderr
            )
        os.close(child)
        while True:
            try:
                chunk = os.read(parent, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.wait(timeout=600)
    finally:
        os.close(parent)
    assert proc.returncode == 0, errors.read_text()[-2000:]
    screen = b"".join(chunks).decode(errors="replace")
    bars = [part for part in screen.replace("\n", "\r").split("\r") if part.startswith("Epoch 1")]
    assert bars and "v_num" not in screen
    finished = [bar for bar in bars if "val/f1 " in bar and " loss " in bar]
    assert finished and max(len(bar.rstrip()) for bar in bars) <= 80


def test_make_echoes_the_command_not_its_environment(tmp_path):
    """``make test`` runs under MALLOC_ENV but prints only the command it runs."""
    selected = "tests/test_terminal.py::test_the_summary_fits_80_columns_and_says_macro"
    result = subprocess.run(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "test",
         f"ARGS=-q -p no:cacheprovider {selected}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stdout.startswith(f".venv/bin/python -m pytest -q -p no:cacheprovider {selected}")
    assert "MALLOC_" not in result.stdout + result.stderr and "1 passed" in result.stdout


def test_demo_generation_says_what_it_does_before_the_wait(tmp_path, caplog):
    from braintumor.data.synthetic import ensure_synthetic_dataset

    params = dict(num_classes=2, per_class=3, min_size=32, max_size=40)
    with caplog.at_level(logging.INFO, logger="braintumor.data.synthetic"):
        ensure_synthetic_dataset(tmp_path / "demo", **params)
        ensure_synthetic_dataset(tmp_path / "demo", **params)  # reused: nothing to say
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("generating the demo dataset (2 classes x 3 scans) into")
    assert messages[1].startswith("demo dataset ready in") and len(messages) == 2
