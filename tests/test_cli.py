"""``python -m braintumor <command>``: one command line for everything but training."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from braintumor.__main__ import COMMANDS, main
from tests.conftest import ROOT
from tests.doc_commands import section


def test_help_lists_every_command(capsys):
    main(["--help"])
    printed = capsys.readouterr().out
    assert all(command in printed for command in COMMANDS)


def test_the_reference_shows_each_command_with_the_arguments_of_its_help():
    text = section((ROOT / "docs" / "reference.md").read_text(), "Command lines")
    for name, command in COMMANDS.items():
        assert f"`python -m braintumor {name} {command.arguments}`" in text, name


def test_each_command_is_dispatched_to_its_module_main():
    for command in COMMANDS.values():
        assert callable(importlib.import_module(command.module).main), command.module


def test_an_unknown_command_is_named_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["pridict"])
    assert exit_info.value.code == 2
    assert "error: unknown command 'pridict'; one of: predict" in capsys.readouterr().err


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_answers_help_from_the_module_entry(command):
    done = subprocess.run([sys.executable, "-m", "braintumor", command, "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip()
