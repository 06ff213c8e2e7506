"""Give memory that was freed back to the operating system.

A long conversation allocates and frees a great deal from many threads (whisper, the LLM,
piper, the echo canceller, the UI); glibc keeps what was freed in per-thread arenas, and
a process that stays up for hours grows in resident memory while holding little. After a
turn has been heard, :func:`release_free_memory` asks glibc to return those free pages
(``malloc_trim``). Elsewhere (macOS, musl) it does nothing.

Trimming cannot give back a page that still holds one live byte, and glibc raises its
threshold for ``mmap`` each time a large block is freed, so after a while the engines'
large, short-lived buffers (a long clause's audio, a recording's features) come from the
heap and are freed in between small live ones. :func:`unpool_large_blocks` keeps blocks
of :data:`LARGE_BLOCK` and more in mappings of their own, given back when freed.

Blocks under it stay in the heap, and so does up to :data:`TRIM_THRESHOLD` of free memory
at its top: whisper's encoder takes and frees buffers of 1 to 4 MiB in every layer, and
a fresh mapping (or heap trimmed after each free) is faulted in and zeroed again each
time. With 1 MiB blocks mapped and glibc's default trimming (128 KiB), measured side by
side in one session, a 6 s window's encoding took 48 ms instead of 30 (on one thread), a
transcription 138 ms instead of 113 and a first clause's synthesis 117 ms instead of 109
(on two); these thresholds are as fast as glibc's own. What the heap holds is given back
after each turn anyway (:func:`release_free_memory`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

__all__ = ["LARGE_BLOCK", "release_free_memory", "unpool_large_blocks"]

log = logging.getLogger(__name__)

LARGE_BLOCK = 4 << 20
"""Bytes from which a block gets a mapping of its own (above whisper's per-layer buffers;
8 MiB left a long clause's memory held after a turn in one run of two)."""
TRIM_THRESHOLD = 32 << 20
"""Free bytes at the top of the heap from which glibc gives them back at once."""
_M_TRIM_THRESHOLD = -1  # mallopt's parameters, from glibc's <malloc.h>
_M_MMAP_THRESHOLD = -3


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_free_memory() -> bool:
    """Return the free memory of every arena to the system (blocks a few milliseconds);
    False where there is no ``malloc_trim``."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(ctypes.c_size_t(0))
    return True


def unpool_large_blocks() -> bool:
    """From now on, blocks of :data:`LARGE_BLOCK` bytes or more are mapped on their own and
    returned to the system when freed (a fixed threshold also stops glibc raising it), and
    the heap is trimmed only past :data:`TRIM_THRESHOLD`; False where there is no
    ``mallopt``."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    mapped = libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(LARGE_BLOCK))
    trimmed = libc.mallopt(ctypes.c_int(_M_TRIM_THRESHOLD), ctypes.c_int(TRIM_THRESHOLD))
    return bool(mapped and trimmed)
