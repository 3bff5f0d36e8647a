"""The commands of the README and the docs/ pages are true to the code: every ``python train.py``
line composes, every other command names something that exists, links lead somewhere, and the
README's quick start runs as written (slow)."""

import csv
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from braintumor.__main__ import COMMANDS
from tests.conftest import CONF_DIR, ROOT, free_port, wait_until_serving
from tests.doc_commands import DOCS, README, doc_commands, quick_start

TRAIN = re.compile(r"^(\.venv/bin/)?python train\.py")


def readme_train_commands() -> list[str]:
    """Every ``python train.py ...`` line of the README and the docs/ pages."""
    return [c for c in doc_commands() if TRAIN.match(c)]


def test_readme_has_train_commands():
    assert len(readme_train_commands()) >= 8
    assert any(TRAIN.match(c) for c in doc_commands(docs=[README]))


@pytest.mark.parametrize("command", readme_train_commands())
def test_readme_command_composes(command, compose):
    for placeholder, value in (("<run>", "RUN"), ("<date>", "DATE"), ("<time>", "TIME")):
        command = command.replace(placeholder, value)
    args = shlex.split(command)[2:]
    if "--cfg" in args:
        args = args[: args.index("--cfg")] + args[args.index("--cfg") + 2 :]
    overrides = [a for a in args if not a.startswith("-")]
    # a sweep's first job (a=1,2 -> a=1); a list value a=[x,y] is one value, not a sweep
    overrides = [re.sub(r"=([^,\[{][^,]*),.*$", r"=\1", o) for o in overrides]
    # glob(...)/choice(...) sweeps are run for real by their own tests
    overrides = [o for o in overrides if not re.search(r"=(glob|choice|range|interval)\(", o)]
    cfg = compose(overrides, hydra=True)
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "." in key:  # a value (not a group choice) landed where the README says
            assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", key


def _make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, flags=re.M))


def test_every_other_documented_command_names_something_that_exists():
    """``python -m braintumor X`` is a command, ``make X`` a target, ``bench/...`` a file."""
    lines = doc_commands()
    targets = _make_targets()
    for line in lines:
        words = shlex.split(line)
        if line.startswith("python -m braintumor "):
            assert words[3] in COMMANDS, line
        elif words[0] == "make":
            assert all(w in targets for w in words[1:] if "=" not in w), line
        elif words[0] in ("python", "bash") and words[1].startswith("bench/"):
            assert (ROOT / words[1]).is_file(), line
        elif words[0] == "source":
            assert words[1] == ".venv/bin/activate", line
        else:
            assert TRAIN.match(line), f"a command no test checks: {line}"
    mentioned = r"`(?:python |bash )?(bench/[^`\s]+)`"
    inline = [m for path in DOCS for m in re.findall(mentioned, path.read_text())]
    assert inline and all((ROOT / m).is_file() for m in inline), inline


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_links_between_the_pages_lead_to_existing_pages_and_sections():
    for path in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if target.startswith("http"):
                continue
            file, _, anchor = target.partition("#")
            page = (path.parent / file).resolve() if file else path
            assert page.is_file(), f"{path.name}: {target}"
            if anchor:
                headings = re.findall(r"^#+ (.*)$", page.read_text(), flags=re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{path.name}: {target}"


def test_print_the_resolved_config_command_runs(tmp_path):
    """``python train.py --cfg job --resolve``: the ``run_name`` resolver is registered
    before Hydra resolves (not only inside the task function)."""
    cmd = [sys.executable, str(ROOT / "train.py"), "--cfg", "job", "--resolve", "seed=7",
           "model.optimizer.lr=0.001"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "version: model.optimizer.lr=0.001,seed=7" in result.stdout  # Hydra sorts them
    assert "${" not in result.stdout
    assert any("--cfg job --resolve" in c for c in readme_train_commands())


def readme_smoke_test() -> list[str]:
    """The README's offline smoke test of every recipe, as arguments of ``train.py``."""
    [line] = [c for c in readme_train_commands() if "glob(*" in c and "pretrained=false" in c]
    return shlex.split(line)[2:]


@pytest.mark.slow
def test_readme_offline_smoke_test_of_every_recipe_runs(tmp_path):
    """The README command, as written, with only the output and cache folders moved."""
    args = readme_smoke_test()
    assert "data=demo" in args  # the transfer recipes' data=brain44c needs a data.root
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "train.py"), *args, f"paths.log_dir={out}",
           f"paths.cache_dir={tmp_path / 'cache'}", f"hydra.sweep.dir={out / 'sweep'}"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    infos = [json.loads(p.read_text()) for p in sorted((out / "sweep").glob("*/run_info.json"))]
    ran = sorted(i["overrides"][0].removeprefix("experiment=") for i in infos)
    several_sets = {"leave_one_source_out"}  # run by its own test (tests/evaluation)
    assert ran == sorted({p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")} - several_sets)
    assert all(i["status"] == "completed" for i in infos), [i.get("error") for i in infos]


BEST = "outputs/<run>/checkpoints/epoch_XXX.ckpt"  # the README's name for the best checkpoint
# The quick start, run for real: `make train` with a small, fast variant of the demo.
QUICK = ["trainer.max_epochs=5", "data.image_size=64", "data.synthetic.per_class=24",
         "model.net.widths=[8,16]", "data.num_workers=0", "eval.bootstrap=50",
         "trainer.enable_progress_bar=false"]  # fmt: skip


def _workspace(tmp_path: Path) -> Path:
    """A folder that looks like a checkout (its own outputs/ and .cache/), for the commands."""
    work = tmp_path / "checkout"
    work.mkdir()
    for name in ("Makefile", "train.py", "conf", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    (work / ".venv").symlink_to(Path(sys.prefix))
    return work


def _serve(command: str, env: dict, cwd: Path, scan: Path) -> dict:
    """Start ``command`` (the web page), classify ``scan`` through its API, stop it."""
    port = free_port()
    process = subprocess.Popen(["bash", "-c", f'{command} ARGS="--port {port} --threads 1"'],
                               cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, start_new_session=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:  # at most ~90 s to import torch and load the model
        info = wait_until_serving(process, url, 90, command)
        request = urllib.request.Request(url + "/api/predict", data=scan.read_bytes(),
                                         headers={"x-filename": scan.name})  # fmt: skip
        result = json.load(urllib.request.urlopen(request, timeout=60))
        return {"info": info, "result": result}
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # make and the server it started
        process.wait(timeout=30)


@pytest.mark.slow
def test_readme_quick_start_runs_as_written(tmp_path):
    """Each quick-start line in turn, in a checkout-like folder: ``make train`` (with a fast
    variant of the demo in ARGS), then predict, export and the web page on what it made, with
    ``outputs/<run>/checkpoints/epoch_XXX.ckpt`` replaced by the checkpoint ``make train``
    printed. ``make test`` is the suite this test belongs to (CI runs it), so it is only
    checked to be there."""
    lines = quick_start()
    assert lines[0] == "make train" and lines[-1] == "make test", lines
    if not (Path(sys.prefix) / "bin" / "activate").is_file():
        pytest.skip("the tests do not run in a virtual environment (.venv/bin/activate)")
    work = _workspace(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "BRAINTUMOR_CACHE"}
    env["OMP_NUM_THREADS"] = "1"
    prelude, best, done = "", None, []
    for line in lines:
        command = line.replace(BEST, str(best)) if best else line
        if line.startswith("source "):
            prelude = f"{line} && "
            done.append(line)
            continue
        if line == "make test":
            done.append(line)
            continue
        if line.startswith("make app "):  # -o as for make train: never reinstall the .venv
            command = command.replace("make ", "make -o .venv/.installed ", 1)
            served = _serve(prelude + command, env, work, next(work.glob(".cache/**/*.jpeg")))
            assert served["info"]["class_names"] and served["result"]["top"], served
            assert "abstain" in served["result"], served
            done.append(line)
            continue
        assert "<" not in command, f"checkpoint not known yet: {line}"
        if line == "make train":  # make -o: never reinstall (offline); ARGS: a fast variant
            command = f"make -o .venv/.installed train ARGS='{' '.join(QUICK)}'"
        result = subprocess.run(["bash", "-c", prelude + command], cwd=work, env=env,
                                capture_output=True, text=True, timeout=600)  # fmt: skip
        assert result.returncode == 0, f"{line}\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
        if line == "make train":
            best = Path(re.search(r"^Checkpoint: +(.+)$", result.stdout, re.M).group(1))
            assert best.is_file() and best.name.startswith("epoch_"), best
            run_dir = best.parent.parent
            assert re.search(r"outputs/\d{4}-\d\d-\d\d/", str(run_dir)), run_dir
            metrics = json.loads((run_dir / "reports" / "test_metrics.json").read_text())
            assert {"temperature", "ci95", "selective", "per_class"} <= set(metrics)
            assert (run_dir / "reports" / "model_card.md").is_file()
        done.append(line)
    assert done == lines
    [predictions] = (work / "outputs" / "predict").glob("*/predictions.csv")
    with predictions.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 * 24 and {"confidence", "model"} <= set(rows[0])
    sidecar = json.loads((work / "model.json").read_text())
    assert "threshold" in sidecar["calibration"] and sidecar["validation_metrics"]
