"""The shell commands the README and the docs/ pages show, read from their ```bash blocks."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import ROOT

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def bash_blocks(text: str) -> list[str]:
    """The bodies of the ```bash blocks of a Markdown text."""
    return re.findall(r"^ *```bash\n(.*?)^ *```", text, flags=re.S | re.M)


def commands(text: str) -> list[str]:
    """Every command line of the ```bash blocks, comments and blank lines dropped."""
    lines = [line.split("#", 1)[0].strip() for b in bash_blocks(text) for line in b.splitlines()]
    return [line for line in lines if line]


def doc_commands(prefix: str = "", docs: list[Path] = DOCS) -> list[str]:
    """The commands of ``docs`` (the README and every docs/ page) that start with ``prefix``."""
    return [c for path in docs for c in commands(path.read_text()) if c.startswith(prefix)]


def section(text: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## `` heading."""
    match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, flags=re.S | re.M)
    assert match, f"no '## {heading}' section"
    return match.group(1)


def quick_start() -> list[str]:
    """The README's quick-start commands, in order."""
    return commands(section(README.read_text(), "Quick start"))
