"""A table of spent one-time tokens in memory that every worker of the host maps.

The file (`<database>-spent-<buckets>`) is an array of buckets of 128 bytes; a token
hashes to one bucket, which holds eight entries (a 64-bit fingerprint of the token and
the whole second it expires) and a floor. A spend locks its bucket's byte in the file
(a POSIX record lock, which the kernel drops if the process dies), reads the bucket,
and either finds the token live (already spent) or writes it into a free or expired
entry. Nothing is ever purged: an expired entry is simply reused.

A bucket whose eight entries are all live forgets the one that expires first and
raises its floor to that expiry; from then on it refuses (as already spent) every
token that expires no later. So the table never accepts a replay, whatever the load:
under a flood of spends the oldest tokens are refused (ACME clients retry badNonce with
a fresh nonce) instead of the table growing. With 131,072 buckets (16 MiB), a bucket
fills only when about a million tokens are live at once.

Fingerprints are 64 bits of BLAKE2b: two live tokens sharing one (odds 2^-64 per pair)
would make the second look spent, which is again only a refusal. The bucket count is
in the file name, so a build with another geometry never reads this one's file.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import math
import os
import struct

from ca_core.store.changes import map_shared

BUCKETS = 1 << 17
_ENTRIES = 8
_BUCKET = struct.Struct(f"<{_ENTRIES}Q{_ENTRIES}II")  # fingerprints, expiries (Unix s), floor
_EXPIRIES = 8 * _ENTRIES  # offsets in a bucket
_FLOOR = _EXPIRIES + 4 * _ENTRIES
_STRIDE = 128


class Locked(Exception):
    """Another process holds the bucket at this instant."""


class SpentTable:
    def __init__(self, path: str, buckets: int = BUCKETS) -> None:
        self.path = f"{path}-{buckets}"
        self._buckets = buckets
        size = buckets * _STRIDE
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._map = map_shared(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise

    def spend(self, token: str, now: float, expires: float, wait: bool = False) -> bool:
        """Record the token as spent until `expires` (Unix seconds); False if it already
        was, or if its bucket refuses tokens expiring that early. Locked if another
        process holds the bucket and not `wait`."""
        digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
        fingerprint = int.from_bytes(digest, "little") or 1  # 0 marks an empty entry
        bucket = fingerprint % self._buckets
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB, 1, bucket)
        except OSError as exc:
            if wait or exc.errno not in (errno.EAGAIN, errno.EACCES):  # not: held by another
                raise
            raise Locked from None
        try:
            # Whole seconds, rounded up: a token is never forgotten before it expires.
            return self._record(bucket * _STRIDE, fingerprint, math.ceil(expires), now)
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN, 1, bucket)

    def _record(self, offset: int, fingerprint: int, expires: int, now: float) -> bool:
        *slots, floor = _BUCKET.unpack_from(self._map, offset)
        if expires <= floor:
            return False
        free = first_to_expire = -1
        for i in range(_ENTRIES):
            if slots[_ENTRIES + i] > now:  # live
                if slots[i] == fingerprint:
                    return False
                if first_to_expire < 0 or slots[_ENTRIES + i] < slots[_ENTRIES + first_to_expire]:
                    first_to_expire = i
            elif free < 0:
                free = i
        if free < 0:  # all live: forget the first to expire, refuse its like from now on
            free = first_to_expire
            struct.pack_into("<I", self._map, offset + _FLOOR, slots[_ENTRIES + free])
        struct.pack_into("<Q", self._map, offset + 8 * free, fingerprint)
        struct.pack_into("<I", self._map, offset + _EXPIRIES + 4 * free, expires)
        return True

    def close(self) -> None:
        if self._fd < 0:
            return
        self._map.close()
        os.close(self._fd)
        self._fd = -1
