"""`ceg init --demo` gives demo.json its `scep` section (a static-challenge binding), and
`ceg scep challenge` hands out one-time challenges for a dynamic binding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main


def test_demo_and_scep_challenge_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["init", "--demo", "--data-dir", str(data), "--http-port", "18080"]) == 0
    demo = json.loads((data / "demo.json").read_text())
    section = demo["scep"]
    assert section["url"] == "http://127.0.0.1:18080/scep/issuing"
    assert len(section["challenge"]) >= 16 and len(section["ra_sha256"]) == 64
    config_text = (data / "ceg.toml").read_text() if (data / "ceg.toml").exists() else ""
    assert section["challenge"] not in config_text

    capsys.readouterr()
    # the demo binding is static: no one-time challenges there
    assert main(["scep", "challenge", "--ca", "issuing", "--data-dir", str(data)]) == 1
    assert "not 'dynamic'" in capsys.readouterr().err

    assert (
        main(["gateway", "add", "scep", "issuing", "--set", "challenge=dynamic", "--data-dir", str(data)])
        == 0
    )
    capsys.readouterr()
    args = ["scep", "challenge", "--ca", "issuing", "--subject", "CN=router-9", "--ttl", "600"]
    assert main([*args, "--json", "--data-dir", str(data)]) == 0
    issued = json.loads(capsys.readouterr().out)
    assert len(issued["challenge"]) == 32 and issued["subject"] == "CN=router-9"
    assert main(["scep", "challenge", "--ca", "issuing", "--ttl", "5", "--data-dir", str(data)]) == 1
