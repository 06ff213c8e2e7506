"""The process gives large freed buffers back to the system (glibc only)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from voicegrok.adapters import heap

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")

LIBC = """
import ctypes, ctypes.util, sys
from voicegrok.adapters.heap import unpool_large_blocks
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
"""

CHILD = (
    LIBC
    + """
from voicegrok.bench.memory import rss_mb
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
)


def _child(code: str, arg: str) -> str:
    """What a fresh interpreter running ``code`` with ``arg`` prints (its own heap)."""
    out = subprocess.run(
        [sys.executable, "-c", code, arg], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def _given_back_mb(mode: str) -> float:
    return float(_child(CHILD, mode))


def test_a_large_buffer_freed_goes_back_to_the_system() -> None:
    if heap._libc() is None:
        pytest.skip("no glibc")
    assert _given_back_mb("unpooled") > 12  # its 16 MiB
    assert _given_back_mb("pooled") < 4  # glibc's default keeps it: what this changes


CHURN = (
    LIBC
    + """
import resource
assert unpool_large_blocks()
size = int(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):  # an engine's buffer of a layer, taken and freed again and again
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
)


def _page_faults(size: int) -> int:
    return int(_child(CHURN, str(size)))


def test_a_buffer_taken_again_and_again_is_not_faulted_in_each_time() -> None:
    """Whisper's encoder frees and takes again buffers of 1 to 4 MiB in every layer: kept in
    the heap, their pages are faulted in once, not at every use (with 1 MiB blocks mapped
    on their own, the encoder took 48 ms instead of 29)."""
    if heap._libc() is None:
        pytest.skip("no glibc")
    pages = (heap.LARGE_BLOCK // 2) // 4096
    assert _page_faults(heap.LARGE_BLOCK // 2) < 5 * pages  # once, not 50 times
    assert _page_faults(heap.LARGE_BLOCK) > 40 * (heap.LARGE_BLOCK // 4096)  # mapped: each time
