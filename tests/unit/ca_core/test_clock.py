"""Randomness from the kernel in blocks (ca_core/clock.py, SystemRandomBytes)."""

from __future__ import annotations

import os

from ca_core.clock import SystemRandomBytes


def test_slices_are_never_handed_out_twice() -> None:
    random_bytes = SystemRandomBytes(block=64)
    values = [random_bytes(16) for _ in range(1000)]  # many blocks, each cut in four
    assert all(len(v) == 16 for v in values)
    assert len(set(values)) == len(values)
    assert len(random_bytes(200)) == 200  # more than a block: read directly


def test_a_forked_child_does_not_repeat_its_parents_bytes() -> None:
    random_bytes = SystemRandomBytes()
    random_bytes(16)  # the block is read; what follows in it is known to both after a fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, random_bytes(16))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 16)
    os.close(read)
    assert len(child) == 16 and child != random_bytes(16)
