"""Protocol front-ends, found through the `ceg.protocols` entry-point group.

A new protocol is a new package with an entry point, not an edit here. Discovery runs
when the app is created, not at import time.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from protocols._shared.web import Frontend

GROUP = "ceg.protocols"


def discover() -> dict[str, Frontend]:
    found: dict[str, Frontend] = {}
    for ep in entry_points(group=GROUP):
        frontend = ep.load()
        if not isinstance(frontend, Frontend):
            raise TypeError(f"entry point {ep.name} ({ep.value}) is not a Frontend")
        found[frontend.name] = frontend
    return dict(sorted(found.items()))
