"""Time and randomness, passed in so the CA and the protocol cores can be tested at any instant."""

from __future__ import annotations

import datetime as dt
import os
import weakref
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


class SystemRandomBytes:
    """The kernel's CSPRNG (os.urandom), read a block at a time and handed out in slices.

    An ACME order takes about fourteen random values (ids, tokens, nonces, a serial);
    one system call and Python's secrets machinery for each cost more than the rest of
    minting them. The bytes are the same kernel output either way. A child forked from
    this process starts with an empty block, so parent and child never hand out the same
    bytes."""

    def __init__(self, block: int = 4096) -> None:
        self._block = block
        self._buffer = b""
        self._used = 0
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _forget(me()))

    def __call__(self, n: int) -> bytes:
        if n > self._block:
            return os.urandom(n)
        if self._used + n > len(self._buffer):
            self._buffer, self._used = os.urandom(self._block), 0
        start = self._used
        self._used = start + n
        return self._buffer[start : start + n]

    def forget(self) -> None:
        self._buffer, self._used = b"", 0


def _forget(random_bytes: SystemRandomBytes | None) -> None:
    if random_bytes is not None:
        random_bytes.forget()
