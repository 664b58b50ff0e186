"""Run every benchmark module in bench/ and print their figures.

Each module `bench/<name>.py` exposes `async def run(report: Report) -> None`.
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import sys

from bench.report import Report


def main(argv: list[str]) -> int:
    wanted = set(argv)
    report = Report()
    here = [__file__.rsplit("/", 1)[0]]
    for info in sorted(pkgutil.iter_modules(here), key=lambda m: m.name):
        if info.name in ("report", "__main__") or info.name.startswith("_"):
            continue
        if wanted and info.name not in wanted:
            continue
        module = importlib.import_module(f"bench.{info.name}")
        print(f"== {info.name}", flush=True)
        try:
            asyncio.run(module.run(report))
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            report.add(info.name, "error", str(exc), "")
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
