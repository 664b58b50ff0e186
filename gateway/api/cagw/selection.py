"""`$fields`: which optional members a CA Gateway response carries.

`$fields=ca.certificate,ca.chain` adds members that are otherwise left out (a CA's
certificate and chain); `$fields=-events.certificate` removes members that are
otherwise there (the certificates in the event feed). Names are dotted paths from the
body's top-level member, comma-separated; unknown names are ignored, as a client
written for a later API version expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_FIELDS = 50


@dataclass(frozen=True)
class Selection:
    include: frozenset[str] = frozenset()
    exclude: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str | None) -> Selection:
        include: set[str] = set()
        exclude: set[str] = set()
        for raw in (text or "").split(",")[:MAX_FIELDS]:
            name = raw.strip()
            if name.startswith("-"):
                exclude.add(name[1:].strip())
            elif name.startswith("+"):
                include.add(name[1:].strip())
            elif name:
                include.add(name)
        return cls(frozenset(include), frozenset(exclude))

    def wants(self, path: str) -> bool:
        """An optional member: asked for by its own name, a parent's or a child's."""
        if self.drops(path):
            return False
        return any(i == path or i.startswith(path + ".") or path.startswith(i + ".") for i in self.include)

    def drops(self, path: str) -> bool:
        return any(e == path or path.startswith(e + ".") for e in self.exclude)

    def prune(self, view: dict[str, Any], prefix: str) -> dict[str, Any]:
        """Remove the members of `view` (found at `prefix`) that `-name` excludes."""
        if not self.exclude:
            return view
        return {k: v for k, v in view.items() if not self.drops(f"{prefix}.{k}")}
