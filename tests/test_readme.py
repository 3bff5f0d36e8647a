"""Every ``python train.py ...`` command in the README composes (keys and options exist)."""

import json
import re
import shlex
import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import CONF_DIR, ROOT


def readme_train_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if re.match(r"^(\.venv/bin/)?python train\.py", line):
                commands.append(line)
    return commands


def test_readme_has_train_commands():
    assert len(readme_train_commands()) >= 8


@pytest.mark.parametrize("command", readme_train_commands())
def test_readme_command_composes(command):
    for placeholder, value in (("<run>", "RUN"), ("<date>", "DATE"), ("<time>", "TIME")):
        command = command.replace(placeholder, value)
    args = shlex.split(command)[2:]
    if "--cfg" in args:
        args = args[: args.index("--cfg")] + args[args.index("--cfg") + 2 :]
    overrides = [a for a in args if not a.startswith("-")]
    overrides = [re.sub(r"=([^,]+),.*$", r"=\1", o) for o in overrides]  # a sweep's first job
    # glob(...)/choice(...) sweeps are run for real by their own tests
    overrides = [o for o in overrides if not re.search(r"=(glob|choice|range|interval)\(", o)]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides, return_hydra_config=True)
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if "." in key:  # a value (not a group choice) landed where the README says
            assert OmegaConf.select(cfg, key, default="<absent>") != "<absent>", key
    GlobalHydra.instance().clear()


def test_print_the_resolved_config_command_runs(tmp_path):
    """``python train.py --cfg job --resolve``: the ``run_name`` resolver is registered
    before Hydra resolves (not only inside the task function)."""
    cmd = [sys.executable, str(ROOT / "train.py"), "--cfg", "job", "--resolve", "seed=7",
           "model.optimizer.lr=0.001"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "version: seed=7,model.optimizer.lr=0.001" in result.stdout
    assert "${" not in result.stdout
    assert any("--cfg job --resolve" in c for c in readme_train_commands())


def readme_smoke_test() -> list[str]:
    """The README's offline smoke test of every recipe, as arguments of ``train.py``."""
    [line] = [c for c in readme_train_commands() if "glob(*)" in c and "pretrained=false" in c]
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
    assert ran == sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
    assert all(i["status"] == "completed" for i in infos), [i.get("error") for i in infos]
