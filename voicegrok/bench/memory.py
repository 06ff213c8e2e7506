"""Memory of this process: resident now and at its peak, on Linux, macOS and Windows.

``resource`` (POSIX) gives the peak; Windows has no ``resource`` module and answers through
``GetProcessMemoryInfo`` (ctypes, no extra dependency); Linux's ``/proc/self`` gives both
without either. On a platform with none of these the functions return None, and the
benches say so in their JSON (:func:`peak_rss_field`).

Units, as the benches have always reported them: the peak in MiB (2**20 bytes), the
resident memory now in MB (10**6 bytes).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

try:
    import resource
except ImportError:  # Windows
    resource = None  # type: ignore[assignment]

__all__ = ["peak_rss_field", "peak_rss_mb", "process_rss_mb", "pss_mb", "rss_mb"]

_MIB = 2**20
_MB = 10**6
UNAVAILABLE = "not measurable on this platform (no resource module, /proc or Windows API)"
"""What the JSON says where a memory figure is None."""


def peak_rss_mb() -> float | None:
    """The peak resident memory of this process so far (MiB), None where it cannot be read."""
    peak = _peak_bytes()
    return None if peak is None else round(peak / _MIB, 1)


def rss_mb() -> float | None:
    """The resident memory of this process now (MB); where only the peak can be read (macOS),
    the peak; None where neither can be read."""
    now = _proc_statm_bytes()
    if now is None:
        now = _windows_bytes()[0]
    if now is None:
        now = _peak_bytes()
    return None if now is None else now / _MB


def pss_mb() -> float | None:
    """The proportional set size of this process now (MB), from ``/proc/self/smaps_rollup``
    (Linux 4.14 and later); None elsewhere.

    The resident set counts a file's pages once for each mapping of it: two llama.cpp
    models of the same GGUF file (the LLM and the model of the words, both SmolLM2 by
    default) read the same pages of the page cache, yet each adds the file's size to the
    resident set. The PSS counts such a page once, and a page shared with other processes
    by its share, so it is the memory the process really takes."""
    now = _proc_status_bytes("Pss", file="smaps_rollup")
    return None if now is None else now / _MB


def process_rss_mb(pid: int) -> float | None:
    """The resident memory of another process now (MB), from ``/proc`` (Linux); None where
    it cannot be read (another platform, or the process has ended)."""
    now = _proc_status_bytes("VmRSS", pid)
    return None if now is None else now / _MB


def peak_rss_field() -> dict[str, object]:
    """``{"peak_rss_mb": ...}`` for a bench's JSON, and why it is None when it is."""
    peak = peak_rss_mb()
    if peak is None:
        return {"peak_rss_mb": None, "peak_rss_mb_missing": UNAVAILABLE}
    return {"peak_rss_mb": peak}


def _peak_bytes() -> float | None:
    """The peak resident memory (bytes): from ``resource`` (POSIX), else Windows's peak
    working set, else Linux's ``VmHWM``."""
    if resource is not None and sys.platform != "win32":
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return float(maxrss if sys.platform == "darwin" else maxrss * 1024)  # macOS: bytes
    peak = _windows_bytes()[1]
    return peak if peak is not None else _proc_status_bytes("VmHWM")


def _proc_statm_bytes() -> float | None:
    """Linux: resident pages now, from ``/proc/self/statm``."""
    if sys.platform == "win32":
        return None
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return float(pages * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, IndexError):
        return None


def _proc_status_bytes(
    field: str, pid: int | str = "self", file: str = "status"
) -> float | None:
    """Linux: a ``kB`` field of ``/proc/PID/status`` (``VmHWM``: the peak resident set), or
    of another such file of the process (``smaps_rollup``)."""
    try:
        for line in Path(f"/proc/{pid}/{file}").read_text().splitlines():
            name, _, value = line.partition(":")
            if name == field:
                return float(int(value.split()[0]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    return None


def _windows_bytes() -> tuple[float | None, float | None]:
    """Windows: (the working set now, its peak) from ``GetProcessMemoryInfo``;
    ``(None, None)`` elsewhere or when the call fails."""
    if sys.platform != "win32":
        return None, None
    import ctypes
    from ctypes import wintypes

    class Counters(ctypes.Structure):
        """``PROCESS_MEMORY_COUNTERS``."""

        _fields_ = (
            ("cb", wintypes.DWORD),
            ("PageFaultCount", wintypes.DWORD),
            ("PeakWorkingSetSize", ctypes.c_size_t),
            ("WorkingSetSize", ctypes.c_size_t),
            ("QuotaPeakPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPagedPoolUsage", ctypes.c_size_t),
            ("QuotaPeakNonPagedPoolUsage", ctypes.c_size_t),
            ("QuotaNonPagedPoolUsage", ctypes.c_size_t),
            ("PagefileUsage", ctypes.c_size_t),
            ("PeakPagefileUsage", ctypes.c_size_t),
        )

    try:
        kernel32 = ctypes.WinDLL("kernel32")
        kernel32.GetCurrentProcess.restype = wintypes.HANDLE
        info = kernel32.K32GetProcessMemoryInfo  # in kernel32 since Windows 7
        info.argtypes = (wintypes.HANDLE, ctypes.POINTER(Counters), wintypes.DWORD)
        info.restype = wintypes.BOOL
        counters = Counters()
        counters.cb = ctypes.sizeof(Counters)
        if not info(kernel32.GetCurrentProcess(), ctypes.byref(counters), counters.cb):
            return None, None
        return float(counters.WorkingSetSize), float(counters.PeakWorkingSetSize)
    except (OSError, AttributeError):
        return None, None
