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
    """`ceg init --demo` then `ceg serve --workers 2` on free ports; yields the HTTP base."""
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
        pids.add(json.loads(urllib.request.urlopen(f"{base}/healthz", timeout=20).read())["pid"])
    assert len(pids) == 2 and proc.pid not in pids
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0  # graceful shutdown of both workers


def test_shutdown_finishes_in_flight_requests(
    served: tuple[str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    """SIGTERM while an EST serverkeygen (an RSA-4096 key made for the answer) is running:
    the answer still arrives complete, then the workers exit."""
    import base64
    import ssl
    import threading

    from ca_core.model import KeyAlgorithm
    from tests.support.pki import make_csr, new_key

    _, proc = served
    demo = json.loads((tmp_path / "data" / "demo.json").read_text())
    csr = base64.b64encode(make_csr(new_key(KeyAlgorithm.RSA_4096), cn="slow-device")).decode()
    context = ssl.create_default_context(cafile=demo["tls_ca_pem"])
    auth = base64.b64encode(f"{demo['est']['username']}:{demo['est']['password']}".encode()).decode()
    request = urllib.request.Request(
        f"{demo['est']['base']}/serverkeygen",
        data=csr.encode(),
        headers={"Content-Type": "application/pkcs10", "Authorization": f"Basic {auth}"},
    )
    outcomes: list[dict[str, object]] = [{} for _ in range(4)]

    def call(outcome: dict[str, object]) -> None:
        try:
            with urllib.request.urlopen(request, timeout=60, context=context) as response:
                outcome["status"], outcome["body"] = response.status, response.read()
        except Exception as exc:
            outcome["error"] = exc

    # Four RSA-4096 key generations on two workers: some are surely still running at 0.3 s.
    callers = [threading.Thread(target=call, args=(o,)) for o in outcomes]
    started = time.monotonic()
    for caller in callers:
        caller.start()
    time.sleep(0.3)
    in_flight = sum(caller.is_alive() for caller in callers)
    proc.send_signal(signal.SIGTERM)
    for caller in callers:
        caller.join(timeout=60)
    assert in_flight > 0, "every request had finished before the signal; the test proved nothing"
    for outcome in outcomes:
        assert outcome.get("status") == 200, outcome
        assert b"application/pkcs8" in outcome["body"]  # type: ignore[operator]
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - started < 30
