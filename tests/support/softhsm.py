"""A SoftHSM2 token in a temporary directory, for one test session."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so")
PIN = "1234"
SO_PIN = "12345678"


def softhsm_module() -> str | None:
    return next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)


class SoftHsmToken:
    def __init__(self, label: str = "ceg-test") -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ceg-hsm-"))
        self.label = label
        self.conf = self.dir / "softhsm2.conf"
        (self.dir / "tokens").mkdir()
        self.conf.write_text(
            f"directories.tokendir = {self.dir / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )

    def init(self) -> None:
        # The library reads SOFTHSM2_CONF when it initialises, so set it for this process.
        os.environ["SOFTHSM2_CONF"] = str(self.conf)
        subprocess.run(
            [
                "softhsm2-util",
                "--init-token",
                "--free",
                "--label",
                self.label,
                "--pin",
                PIN,
                "--so-pin",
                SO_PIN,
            ],
            check=True,
            capture_output=True,
            env={**os.environ, "SOFTHSM2_CONF": str(self.conf)},
            timeout=60,
        )
