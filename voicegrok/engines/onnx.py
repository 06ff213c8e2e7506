"""ONNX Runtime sessions on the CPU, with a thread budget and one-line load errors."""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

from ..errors import ModelError, first_line

__all__ = ["ShrinkableSession", "cpu_session"]

_SHRINK = ("memory.enable_memory_arena_shrinkage", "cpu:0")
_register_lock = threading.Lock()


@functools.cache
def _shared_arena() -> None:
    """One CPU arena for the sessions that can give memory back, growing by what is asked
    (not doubling): onnxruntime shrinks only an arena registered in its environment."""
    import onnxruntime

    info = onnxruntime.OrtMemoryInfo(
        "Cpu", onnxruntime.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, onnxruntime.OrtMemType.DEFAULT
    )
    # max memory: none; extend strategy 1: kSameAsRequested; chunk sizes: the defaults
    onnxruntime.create_and_register_allocator(info, onnxruntime.OrtArenaCfg(0, 1, -1, -1))


class ShrinkableSession:
    """A session whose arena can give back what its runs took: once :attr:`shrink_next`
    is set, the next run ends by shrinking it. Callers use ``run`` as on an
    ``InferenceSession``; everything else passes through."""

    def __init__(self, session: Any) -> None:
        import onnxruntime

        self._session = session
        self._shrink = onnxruntime.RunOptions()
        self._shrink.add_run_config_entry(*_SHRINK)
        self.shrink_next = False

    def run(self, output_names: Any, input_feed: Any, run_options: Any = None) -> Any:
        if self.shrink_next and run_options is None:
            self.shrink_next = False
            run_options = self._shrink
        return self._session.run(output_names, input_feed, run_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)


def cpu_session(
    path: Path, *, threads: int, what: str, fix: str, shrinkable: bool = False
) -> Any:
    """Load ``path`` with ``threads`` intra-op threads, or raise ModelError naming ``fix``.

    With more than one thread, the pool's threads sleep between runs instead of spinning
    (onnxruntime's default): a spinning pool would take a core from the LLM after every
    run.

    ``shrinkable``: for a model whose input size varies (a voice: one clause long, the
    next short), a :class:`ShrinkableSession`. Its working memory is kept in onnxruntime's
    arena, which keeps the most that any run ever took: a Piper voice grew a process by
    226 MB over 40 clauses of 6 to 30 words, and by 790 MB with one of 140 words. (Shrunk
    after every run, the next one allocated it again: each clause took 10% longer.)"""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4
    if shrinkable:
        with _register_lock:
            _shared_arena()
        options.add_session_config_entry("session.use_env_allocators", "1")
    try:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own untyped exceptions
        raise ModelError(f"{path}: cannot load the {what} ({first_line(e)}); {fix}") from None
    return ShrinkableSession(session) if shrinkable else session
