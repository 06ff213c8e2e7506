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
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

__all__ = ["LARGE_BLOCK", "release_free_memory", "unpool_large_blocks"]

log = logging.getLogger(__name__)

LARGE_BLOCK = 1 << 20
"""Bytes from which a block gets a mapping of its own (1 MiB: audio of a few seconds)."""
_M_MMAP_THRESHOLD = -3  # mallopt's parameter, from glibc's <malloc.h>


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
    returned to the system when freed (a fixed threshold also stops glibc raising it);
    False where there is no ``mallopt``."""
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(ctypes.c_int(_M_MMAP_THRESHOLD), ctypes.c_int(LARGE_BLOCK)))
