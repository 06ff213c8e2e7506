"""Give memory that was freed back to the operating system.

A long conversation allocates and frees a great deal from many threads (whisper, the LLM,
piper, the echo canceller, the UI); glibc keeps what was freed in per-thread arenas, and
a process that stays up for hours grows in resident memory while holding little. After a
turn has been heard, :func:`release_free_memory` asks glibc to return those free pages
(``malloc_trim``). Elsewhere (macOS, musl) it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
from typing import Any

__all__ = ["release_free_memory"]

log = logging.getLogger(__name__)


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
