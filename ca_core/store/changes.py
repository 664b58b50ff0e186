"""Change tokens: has a namespace of state documents changed since I last looked?

For per-process caches of documents that rarely change and are read on every request
(an ACME account, read by each of its requests). The workers of one host share a small
memory-mapped file beside the SQLite database. It holds one 8-byte token per slot (a
namespace hashes to a slot); every committed write to a namespace puts a new random
value in its slot. A cache keeps the token it saw before reading the database and
trusts its copy only while the slot still holds that token.

The new value goes in after the commit, so a copy read before or during a commit is
always followed by a change of token. The values are random rather than counted: two
workers replacing a slot at once cannot bring it back to a value a reader has seen, as
a lost increment of a counter could. A worker killed between its commit and the new
token leaves a stale copy behind; callers bound that with a short lifetime.

Only a SQLite file database has this file: PostgreSQL replicas may sit on other hosts,
so there the state store gives no token and nothing is cached.
"""

from __future__ import annotations

import mmap
import os
import struct
import zlib
from collections.abc import Iterable

from ca_core.clock import SystemRandomBytes

SLOTS = 64
_SLOT = struct.Struct("<Q")
_SIZE = SLOTS * _SLOT.size


class ChangeTokens:
    def __init__(self, path: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            self._map: mmap.mmap | None = map_shared(fd, _SIZE)  # new: token 0 in every slot
        finally:
            os.close(fd)
        self._offsets: dict[str, int] = {}
        self._random = SystemRandomBytes()  # a block from the kernel, not a call per value

    def token(self, namespace: str) -> int:
        """The namespace's current token (shared with other namespaces in its slot)."""
        assert self._map is not None, "closed"
        return int(_SLOT.unpack_from(self._map, self._offset(namespace))[0])

    def changed(self, namespaces: Iterable[str] | None) -> None:
        """Call after a commit that wrote these namespaces (None: it may have written any)."""
        if self._map is None:
            return
        if namespaces is None:
            offsets = set(range(0, _SIZE, _SLOT.size))
        else:
            offsets = {self._offset(n) for n in namespaces}
        for offset in offsets:
            _SLOT.pack_into(self._map, offset, int.from_bytes(self._random(_SLOT.size), "little"))

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None

    def _offset(self, namespace: str) -> int:
        offset = self._offsets.get(namespace)
        if offset is None:
            offset = self._offsets[namespace] = (zlib.crc32(namespace.encode()) % SLOTS) * _SLOT.size
        return offset


def map_shared(fd: int, size: int) -> mmap.mmap:
    """Map `size` bytes of the file, growing it first (new pages read as zeros). Never
    shrinks it: another worker may have it mapped, and would fault past the new end."""
    if os.fstat(fd).st_size < size:
        os.ftruncate(fd, size)
    return mmap.mmap(fd, size)
