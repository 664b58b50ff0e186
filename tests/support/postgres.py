"""A throwaway PostgreSQL server from the machine's own binaries, for one test session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

PG_BIN_DIRS = ("/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/16/bin", "/usr/lib/postgresql/15/bin")


def pg_bin(name: str) -> str | None:
    for d in PG_BIN_DIRS:
        candidate = Path(d) / name
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="ceg-pg-"))
        self.port = _free_port()
        self._as_root = os.geteuid() == 0
        self._counter = 0

    def _run(self, args: list[str]) -> None:
        if self._as_root:
            args = ["runuser", "-u", "postgres", "--", *args]
        subprocess.run(args, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        initdb, pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        assert initdb and pg_ctl, "PostgreSQL server binaries not found"
        data = self.dir / "data"
        if self._as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run([initdb, "-D", str(data), "-U", "ceg", "--auth=trust", "-E", "UTF8", "--no-sync"])
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        self._run([pg_ctl, "-D", str(data), "-o", options, "-l", str(self.dir / "log"), "-w", "start"])
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("PostgreSQL did not start")

    def create_database(self) -> str:
        """A fresh database; returns its SQLAlchemy URL."""
        self._counter += 1
        name = f"ceg_{os.getpid()}_{self._counter}"
        psql = pg_bin("psql") or "psql"
        subprocess.run(
            [
                psql,
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "ceg",
                "-d",
                "postgres",
                "-c",
                f"CREATE DATABASE {name}",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return f"postgresql+asyncpg://ceg@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        pg_ctl = pg_bin("pg_ctl")
        if pg_ctl:
            try:
                self._run([pg_ctl, "-D", str(self.dir / "data"), "-m", "immediate", "stop"])
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
