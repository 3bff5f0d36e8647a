"""``braintumor.inference.predict``: a checkpoint and a folder of scans -> predictions.csv."""

import contextlib
import csv
import io
import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from PIL import Image
from torch.utils.data import DataLoader

from braintumor.data.dataset import ScanDataset
from braintumor.data.preprocessing import eval_transform
from braintumor.data.scan import Scan
from braintumor.errors import UsageError
from braintumor.inference.export import parse_args as export_parse_args
from braintumor.inference.predict import PredictConfig, find_inputs, main, parse_args, predict
from braintumor.training.module import MRIClassifier
from tests.conftest import ROOT
from tests.doc_commands import doc_commands


@pytest.fixture
def scans(tiny_root, tmp_path):
    """Two scans per class of the tiny data, a corrupt JPEG and a junk file."""
    root = tmp_path / "scans"
    for class_dir in sorted(p for p in tiny_root.iterdir() if p.is_dir()):
        (root / class_dir.name).mkdir(parents=True)
        for f in sorted(class_dir.glob("*.jpeg"))[:2]:
            shutil.copy(f, root / class_dir.name / f.name)
    good = next(root.rglob("*.jpeg")).read_bytes()
    (root / "corrupt.jpeg").write_bytes(good[: len(good) // 2])
    (root / "notes.txt").write_text("not a scan")
    return root


def test_predict_on_a_folder_matches_trainer_predict(trained_ckpt, scans, tmp_path):
    cfg = PredictConfig(ckpt=str(trained_ckpt), input=str(scans), out=str(tmp_path / "out"),
                        batch_size=3, device="cpu")  # fmt: skip
    rows, skipped = predict(cfg)
    assert [s[0] for s in skipped] == [str(scans / "corrupt.jpeg")]
    assert "truncated" in skipped[0][1]
    good = [p for p in find_inputs(scans)[1] if p.name != "corrupt.jpeg"]
    assert [r["file"] for r in rows] == [str(p) for p in good]

    model = MRIClassifier.load_from_checkpoint(trained_ckpt, map_location="cpu")
    prep = model.hparams.preprocessing
    transform = eval_transform(prep["image_size"], prep["mean"], prep["std"], prep["channels"])
    dataset = ScanDataset(scans, [Scan(str(p.relative_to(scans)), p.parent.name) for p in good],
                          prep["class_names"], prep["channels"], transform)  # fmt: skip
    trainer = Trainer(accelerator="cpu", logger=False, enable_progress_bar=False)
    probs = torch.cat(trainer.predict(model, DataLoader(dataset, batch_size=4))).numpy()
    expected = [prep["class_names"][i] for i in probs.argmax(1)]
    assert len(set(expected)) >= 2  # the model tells scans apart: the order of rows matters
    assert [r["class"] for r in rows] == expected
    got = np.array([r["probability"] for r in rows])
    assert np.allclose(got, probs.max(1), atol=1e-5)

    written = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert [r["class"] for r in written] == expected
    assert list(written[0]) == ["file", "class", "probability", "confidence", "class_2",
                                "probability_2", "class_3", "probability_3", "model"]  # fmt: skip
    assert {r["model"] for r in written} == {trained_ckpt.name}
    assert {r["confidence"] for r in written} <= {"high", "moderate", "low", "uncertain - refer"}
    assert (tmp_path / "out" / "skipped.csv").read_text().count("corrupt.jpeg") == 1


def test_predict_reads_any_image_mode_and_size(trained_ckpt, tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "modes"
    folder.mkdir()
    gray = rng.integers(0, 255, (70, 45), dtype=np.uint8)
    Image.fromarray(gray).save(folder / "gray.png")
    Image.fromarray(gray).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray(gray).convert("P").save(folder / "palette.gif")
    Image.fromarray(gray).convert("CMYK").save(folder / "cmyk.tiff")
    Image.fromarray(gray.astype(np.uint16) * 200).save(folder / "sixteen.png")
    Image.fromarray(rng.integers(0, 255, (300, 20, 3), dtype=np.uint8)).save(folder / "rgb.jpg")
    rows, skipped = predict(
        PredictConfig(
            ckpt=str(trained_ckpt),
            input=str(folder),
            out=str(tmp_path / "out"),
            topk=10,
            check_input=False,
        )
    )  # noise: not like an MRI scan
    assert skipped == [] and len(rows) == 6
    for row in rows:  # topk is capped at the 4 classes; the top-k probabilities are sorted
        top = [row["probability"]] + [row[f"probability_{k}"] for k in range(2, 5)]
        assert "class_5" not in row and "class_1" not in row and top == sorted(top, reverse=True)
        assert sum(top) == pytest.approx(1.0, abs=1e-4)


def test_predict_command_line_explains_and_prints_a_table(trained_ckpt, scans, tmp_path):
    shutil.rmtree(scans / sorted(p.name for p in scans.iterdir() if p.is_dir())[0])
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "braintumor", "predict", f"ckpt={trained_ckpt}",
           f"input={scans}", f"out={out}", "topk=2", "--explain", "threads=1"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "6 scans predicted, 1 skipped" in result.stdout
    assert "corrupt.jpeg" in result.stdout + result.stderr
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert len(rows) == 6 and "class_3" not in rows[0]
    for row in rows:
        assert row["gradcam_class"] == row["class"]
        with Image.open(row["gradcam"]) as overlay, Image.open(row["file"]) as scan:
            assert overlay.size == scan.size and overlay.mode == "RGB"


def test_predict_arguments_are_checked():
    cfg = parse_args(["ckpt=a.ckpt", "input=x", "--explain", "topk=5"])
    assert cfg.explain is True and cfg.topk == 5
    cfg = parse_args(["model.onnx", "scan.jpg", "topk=2"])  # positional: MODEL INPUT
    assert (cfg.ckpt, cfg.input, cfg.topk) == ("model.onnx", "scan.jpg", 2)
    assert parse_args(["input=x", "m.onnx"]).ckpt == "m.onnx"
    with pytest.raises(UsageError, match=r"unknown argument .topkk.; the arguments are ckpt"):
        parse_args(["ckpt=a.ckpt", "input=x", "topkk=5"])
    with pytest.raises(UsageError, match="missing a scan or a folder"):
        parse_args(["ckpt=a.ckpt"])
    with pytest.raises(UsageError, match="unexpected argument"):
        parse_args(["a.ckpt", "x", "y"])
    with pytest.raises(UsageError, match="unknown option --explian"):
        parse_args(["a.ckpt", "x", "--explian"])
    with pytest.raises(UsageError, match="bad value for topk"):
        parse_args(["a.ckpt", "x", "topk=many"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_inputs("/nonexistent/scans")


def readme_commands(module: str) -> list[list[str]]:
    """The arguments of every ``python -m braintumor <module>`` line of the README and docs/."""
    prefix = f"python -m braintumor {module} "
    return [shlex.split(line.removeprefix(prefix)) for line in doc_commands(prefix)]


def test_readme_predict_and_export_commands_parse():
    predict_commands, export_commands = readme_commands("predict"), readme_commands("export")
    assert len(predict_commands) >= 2 and len(export_commands) >= 1
    for args in predict_commands:
        cfg = parse_args(args)
        assert cfg.ckpt.endswith((".ckpt", ".onnx")) and cfg.input
    assert any(parse_args(args).explain for args in predict_commands)
    for args in export_commands:
        assert export_parse_args(args).ckpt.endswith(".ckpt")


def big_png(path, width: int, height: int):
    """A real, decodable, mostly black PNG of ``width`` x ``height`` (a few KB on disk)."""
    Image.new("L", (width, height)).save(path, compress_level=1)
    return path


def test_predict_skips_an_image_over_the_pixel_limit_and_caps_overlays(trained_ckpt, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    big_png(folder / "bomb.png", 7000, 7000)  # 49 MP: over MAX_PIXELS, under PIL's own limit
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1200, 1500), dtype=np.uint8)).save(folder / "wide.png")
    rows, skipped = predict(
        PredictConfig(
            ckpt=str(trained_ckpt),
            input=str(folder),
            explain=True,
            out=str(tmp_path / "out"),
            device="cpu",
            check_input=False,
        )
    )  # noise: not like a scan
    assert [s[0] for s in skipped] == [str(folder / "bomb.png")]
    assert "7000x7000 pixels is more than the 40,000,000" in skipped[0][1]
    assert [r["file"] for r in rows] == [str(folder / "wide.png")]
    with Image.open(rows[0]["gradcam"]) as overlay:  # drawn at most 1024 px on a side
        assert overlay.size == (1024, 819)


def run_main(*args: str) -> str:
    """``braintumor.inference.predict``'s command line in-process; the one line it exits
    with (exit code 2)."""
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info, contextlib.redirect_stderr(err):
        main(list(args))
    assert exit_info.value.code == 2
    message = err.getvalue()
    assert message.startswith("error: ") and message.count("\n") == 1
    return message


def test_predict_refuses_unusable_settings_in_one_line(trained_ckpt, scans, tmp_path):
    model, data = f"ckpt={trained_ckpt}", f"input={scans}"
    assert "batch_size=0: it must be at least 1" in run_main(model, data, "batch_size=0")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    message = run_main(model, data, f"out={a_file}")
    assert str(a_file) in message and "is a file, not a folder" in message
    message = run_main(model, data, f"out={a_file / 'below'}")
    assert "cannot write into out=" in message and "Not a directory" in message
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a protobuf at all")
    broken.with_suffix(".json").write_text(json.dumps({
        "class_names": ["a", "b"], "image_size": 32, "channels": 1, "mean": [0.5], "std": [0.5]
    }))  # fmt: skip
    message = run_main(f"ckpt={broken}", data, f"out={tmp_path / 'o'}")
    assert str(broken) in message and "not a readable ONNX file" in message
    assert "export" in message
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    message = run_main(f"ckpt={empty}", data, f"out={tmp_path / 'p'}")
    assert str(empty) in message and "is empty (0 bytes)" in message


def test_predict_refuses_to_overwrite_earlier_predictions(trained_ckpt, scans, tmp_path):
    out = tmp_path / "out"
    cfg = PredictConfig(ckpt=str(trained_ckpt), input=str(scans), out=str(out), device="cpu")
    predict(cfg)
    first = (out / "predictions.csv").read_bytes()
    (scans / "corrupt.jpeg").unlink()  # the second run skips nothing
    message = run_main(f"ckpt={trained_ckpt}", f"input={scans}", f"out={out}")
    assert "already holds predictions (predictions.csv, skipped.csv)" in message
    assert "overwrite=true" in message and str(out) in message
    assert (out / "predictions.csv").read_bytes() == first
    rows, skipped = predict(PredictConfig(**{**vars(cfg), "overwrite": True}))
    assert len(rows) == 8 and skipped == []
    assert not (out / "skipped.csv").exists()  # no stale list of skipped files is left


def test_predict_publishes_its_files_whole(trained_ckpt, scans, tmp_path, monkeypatch):
    import os

    replaced = []
    real_replace = os.replace

    def spy(source, target):
        replaced.append((Path(source), Path(target)))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", spy)
    out = tmp_path / "out"
    rows, _ = predict(PredictConfig(ckpt=str(trained_ckpt), input=str(scans), out=str(out),
                                    explain=True, device="cpu"))  # fmt: skip
    targets = {target for _, target in replaced}
    assert {out / "predictions.csv", out / "skipped.csv"} <= targets
    assert {Path(r["gradcam"]) for r in rows} <= targets
    assert all(source.parent == target.parent for source, target in replaced)  # beside it
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]


def test_cold_onnx_predict_on_one_scan_imports_no_torch(exported, tiny_root, tmp_path):
    scan = sorted(tiny_root.rglob("*.jpeg"))[0]
    cmd = [sys.executable, "-X", "importtime", "-m", "braintumor", "predict", str(exported[0]),
           str(scan), f"out={tmp_path / 'out'}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]  # fmt: skip
    assert "onnxruntime" in imported and "numpy" in imported
    heavy = [m for m in imported if m.split(".")[0] in ("torch", "torchvision", "lightning")]
    assert heavy == []
    rows = list(csv.DictReader((tmp_path / "out" / "predictions.csv").open()))
    assert [r["file"] for r in rows] == [str(scan)] and rows[0]["model"] == exported[0].name
    assert "1 scans predicted, 0 skipped" in result.stdout


def test_a_missing_file_is_one_line_and_exit_code_2(exported, tmp_path):
    cmd = [sys.executable, "-m", "braintumor", "predict", str(exported[0]),
           str(tmp_path / "nope.jpg")]  # fmt: skip
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"error: input '{tmp_path / 'nope.jpg'}' does not exist: give an " \
                            "image file or a folder.\n"  # fmt: skip
    cmd[4] = str(tmp_path / "gone.onnx")
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "gone.onnx' does not exist" in result.stderr and "Traceback" not in result.stderr


def test_every_argument_mistake_is_one_clear_line(exported, scans, tmp_path):
    model, data = str(exported[0]), str(scans)
    assert "topk=0: it must be at least 1" in run_main(model, data, "topk=0")
    assert "num_workers=-1" in run_main(model, data, "num_workers=-1")
    assert "explain=true needs gradients" in run_main(model, data, "--explain")
    assert "unknown option --verbose" in run_main(model, data, "--verbose")
    assert "missing the model" in run_main("input=x")
    message = run_main(str(tmp_path / "notes.txt"), data)
    assert "does not exist" in message
    (tmp_path / "notes.txt").write_text("x")
    assert "neither an ONNX file (.onnx) nor a checkpoint" in run_main(str(tmp_path / "notes.txt"),
                                                                       data)  # fmt: skip
    assert "device=tpu" in run_main(model, data, "device=tpu", f"out={tmp_path / 'o'}")
    message = run_main(model, data, "target_class=Nope", f"out={tmp_path / 'p'}")
    assert "target_class 'Nope' is neither an index nor one of" in message
