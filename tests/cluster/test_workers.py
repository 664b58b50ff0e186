"""`ceg serve --workers 2`: two processes share the ports and the database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.gateway import free_port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    http, https = free_port(), free_port()
    env = {**os.environ, "CEG_KEY_PASSPHRASE": "workers-test"}
    data = tmp_path / "data"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "init",
            "--demo",
            "--data-dir",
            str(data),
            "--http-port",
            str(http),
            "--https-port",
            str(https),
        ],
        check=True,
        capture_output=True,
        env=env,
        timeout=120,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--data-dir", str(data), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1).read()
            break
        except OSError:
            time.sleep(0.2)
    yield base, proc
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_two_workers_answer(served: tuple[str, subprocess.Popen[bytes]]) -> None:
    base, proc = served
    pids: set[int] = set()
    deadline = time.monotonic() + 60  # the second worker may still be starting
    while len(pids) < 2 and time.monotonic() < deadline:
        # Each urlopen is a new connection; the kernel spreads them over the workers.
        pids.add(json.loads(urllib.request.urlopen(f"{base}/healthz", timeout=5).read())["pid"])
    assert len(pids) == 2 and proc.pid not in pids
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0  # graceful shutdown of both workers
