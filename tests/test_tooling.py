"""The tree passes the linters and the type checker CI runs (pinned in constraints.txt).

They run here, in the README's test command, so a contributor's `pytest` and CI agree: a change
that breaks the formatting or a type fails like any other test, with the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the environment pytest runs in has the pinned tools


def run_tool(*argv: str) -> subprocess.CompletedProcess[str]:
    tool = BIN / argv[0]
    if not tool.exists():
        pytest.fail(
            f"{tool} is missing: install the dev tools with `pip install -c "
            "constraints.txt -e '.[dev]'`"
        )
    return subprocess.run(
        [str(tool), *argv[1:]], cwd=REPO, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "argv",
    [("ruff", "check", "."), ("ruff", "format", "--check", "."), ("mypy",)],
    ids=["ruff-check", "ruff-format", "mypy"],
)
def test_tree_passes(argv: tuple[str, ...]) -> None:
    done = run_tool(*argv)
    assert done.returncode == 0, f"`{' '.join(argv)}` failed:\n{done.stdout}{done.stderr}"
