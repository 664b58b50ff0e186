"""Third-party tools the tests drive. In CI (CI=true) a missing tool fails the run; on a
developer machine the test is skipped with the reason (install with `make system-deps`)."""

from __future__ import annotations

import os
import shutil

import pytest


def require_tool(name: str, path: str | None = None) -> str:
    found = path if path and os.path.exists(path) else shutil.which(name)
    if found:
        return found
    message = f"{name} is not installed (make system-deps installs it)"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
    raise AssertionError  # unreachable
