"""Every ``python train.py ...`` command in the README composes (keys and options exist)."""

import re
import shlex

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
