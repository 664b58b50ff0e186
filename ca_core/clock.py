"""Time and randomness, passed in so the CA and the protocol cores can be tested at any instant."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Protocol

RandomBytes = Callable[[int], bytes]


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware UTC datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class ManualClock:
    """A clock tests set and move."""

    def __init__(self, start: dt.datetime | None = None) -> None:
        self._now = start or dt.datetime(2026, 1, 15, 12, 0, tzinfo=dt.UTC)

    def now(self) -> dt.datetime:
        return self._now

    def set(self, value: dt.datetime) -> None:
        self._now = value

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta


def system_random(n: int) -> bytes:
    return secrets.token_bytes(n)
