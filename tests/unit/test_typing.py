"""mypy on ca_core with the settings of pyproject.toml ([tool.mypy]: untyped defs refused,
unused ignores reported). Part of the suite, so a type error in the core fails CI.

protocols is in pyproject's mypy `packages` too, but other branches are still writing it;
this test holds ca_core only (`mypy -p ca_core`), and `mypy` alone checks both.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_mypy_is_clean_on_ca_core() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "-p", "ca_core"], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
