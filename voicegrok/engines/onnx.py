"""ONNX Runtime sessions on the CPU, with a thread budget and one-line load errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ModelError, first_line

__all__ = ["cpu_session"]


def cpu_session(path: Path, *, threads: int, what: str, fix: str) -> Any:
    """Load ``path`` with ``threads`` intra-op threads, or raise ModelError naming ``fix``.

    With more than one thread, the pool's threads sleep between runs instead of spinning
    (onnxruntime's default): a spinning pool would take a core from the LLM after every
    run."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 4
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as e:  # onnxruntime raises its own untyped exceptions
        raise ModelError(f"{path}: cannot load the {what} ({first_line(e)}); {fix}") from None
