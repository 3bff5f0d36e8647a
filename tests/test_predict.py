"""``braintumor.predict``: a checkpoint and a folder of scans -> predictions.csv."""

import csv
import re
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from lightning.pytorch import Trainer
from PIL import Image
from torch.utils.data import DataLoader

from braintumor.data.dataset import ScanDataset
from braintumor.data.scan import Scan
from braintumor.data.transforms import eval_transform
from braintumor.export import parse_args as export_parse_args
from braintumor.lit import MRIClassifier
from braintumor.predict import PredictConfig, find_inputs, parse_args, predict
from tests.conftest import ROOT


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
    assert list(written[0])[:5] == ["file", "class", "probability", "class_1", "probability_1"]
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
    rows, skipped = predict(PredictConfig(ckpt=str(trained_ckpt), input=str(folder),
                                          out=str(tmp_path / "out"), topk=10))  # fmt: skip
    assert skipped == [] and len(rows) == 6
    for row in rows:  # topk is capped at the 4 classes; the top-k probabilities are sorted
        top = [row[f"probability_{k}"] for k in range(1, 5)]
        assert "class_5" not in row and top == sorted(top, reverse=True)
        assert sum(top) == pytest.approx(1.0, abs=1e-4) and row["class_1"] == row["class"]


def test_predict_command_line_explains_and_prints_a_table(trained_ckpt, scans, tmp_path):
    shutil.rmtree(scans / sorted(p.name for p in scans.iterdir() if p.is_dir())[0])
    out = tmp_path / "cli"
    cmd = [sys.executable, "-m", "braintumor.predict", f"ckpt={trained_ckpt}", f"input={scans}",
           f"out={out}", "topk=2", "--explain", "threads=1"]  # fmt: skip
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
    with pytest.raises(SystemExit, match="topkk"):
        parse_args(["ckpt=a.ckpt", "input=x", "topkk=5"])
    with pytest.raises(SystemExit, match="missing input"):
        parse_args(["ckpt=a.ckpt"])
    with pytest.raises(SystemExit, match="key=value"):
        parse_args(["a.ckpt"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        find_inputs("/nonexistent/scans")


def readme_commands(module: str) -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    prefix = f"python -m braintumor.{module} "
    return [shlex.split(line.removeprefix(prefix)) for line in lines if line.startswith(prefix)]


def test_readme_predict_and_export_commands_parse():
    predict_commands, export_commands = readme_commands("predict"), readme_commands("export")
    assert len(predict_commands) >= 2 and len(export_commands) >= 1
    for args in predict_commands:
        cfg = parse_args(args)
        assert cfg.ckpt.endswith(".ckpt") and cfg.input
    assert any(parse_args(args).explain for args in predict_commands)
    for args in export_commands:
        assert export_parse_args(args).out == "model.onnx"
