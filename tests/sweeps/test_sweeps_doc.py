"""docs/sweeps.md's SLURM recipe (a ```sh block, not runnable here): its worker command
composes, and lands the study's storage, name and size where the sweeper reads them."""

from __future__ import annotations

import re
import shlex

from omegaconf import OmegaConf

from tests.conftest import ROOT


def recipe_commands() -> list[str]:
    text = (ROOT / "docs" / "sweeps.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", text, flags=re.S | re.M)
    return [line for b in blocks for line in b.splitlines() if " train.py " in line]


def test_the_slurm_recipes_worker_command_composes(compose):
    (command,) = recipe_commands()
    words = shlex.split(command)
    assert words[:3] == ["srun", ".venv/bin/python", "train.py"] and words[3] == "-m"
    overrides = words[4:]
    cfg = compose(overrides, hydra=True)
    for override in overrides:
        key, value = override.split("=", 1)
        if "." in key:
            assert str(OmegaConf.select(cfg, key)) == value, key
    assert cfg.hydra.sweeper.storage.endswith(".journal")
    assert cfg.hydra.sweeper._target_.endswith("ResumableOptunaSweeper")
