"""The lint gate: the whole repository passes ruff, as `make lint` demands."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).with_name("ruff")


@pytest.mark.parametrize(
    "command",
    [["check", "--no-cache", "."], ["format", "--check", "--no-cache", "."]],
    ids=["lint", "format"],
)
def test_it_passes_ruff(command):
    result = subprocess.run(
        [str(RUFF), *command], cwd=REPO, capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr
