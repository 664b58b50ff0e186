"""mypy on ca_core and protocols (ARCHITECTURE.md section 9) with the settings of
pyproject.toml ([tool.mypy]: untyped defs refused, unused ignores reported). Part of the
suite, so a type error fails CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean_on_ca_core_and_protocols() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", "ca_core", "-p", "protocols"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
