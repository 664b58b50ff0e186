"""Collects figures and prints them as one table."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Report:
    rows: list[tuple[str, str, str, str]] = field(default_factory=list)

    def add(self, benchmark: str, measure: str, value: str, note: str = "") -> None:
        self.rows.append((benchmark, measure, value, note))
        print(f"  {measure}: {value} {note}", flush=True)

    def print(self) -> None:
        widths = [
            max(len(r[i]) for r in [("benchmark", "measure", "value", "note"), *self.rows]) for i in range(4)
        ]
        line = "  ".join(f"{{:<{w}}}" for w in widths)
        print()
        print(line.format("benchmark", "measure", "value", "note"))
        print(line.format(*("-" * w for w in widths)))
        for row in self.rows:
            print(line.format(*row))
