"""The process gives large freed buffers back to the system (glibc only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from voicegrok.adapters import heap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

CHILD = """
import ctypes, ctypes.util, sys
from voicegrok.adapters.heap import unpool_large_blocks
from voicegrok.bench.memory import rss_mb
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "unpooled":
    assert unpool_large_blocks()
big = libc.malloc(24 << 20)  # freed: glibc raises its mmap threshold to 24 MiB
libc.free(big)
block = libc.malloc(16 << 20)  # a large buffer of a turn
ctypes.memset(block, 1, 16 << 20)
keep = [libc.malloc(64) for _ in range(1000)]  # small live blocks allocated after it
held = rss_mb()
libc.free(block)
print(held - rss_mb())
"""


def _given_back_mb(mode: str) -> float:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def test_a_large_buffer_freed_goes_back_to_the_system() -> None:
    if heap._libc() is None:
        pytest.skip("no glibc")
    assert _given_back_mb("unpooled") > 12  # its 16 MiB
    assert _given_back_mb("pooled") < 4  # glibc's default keeps it: what this changes
