"""One-off turns printed to a terminal (``ask``, ``reply``, ``demo``): the transcript, the
answer token by token, then the timings; per-turn metrics appended to a JSON-lines file.

The live conversation has its own printer, :class:`~voicegrok.adapters.console.ConsoleView`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from ..frames import Frame, Interrupt, LLMToken, ToolUsed, TurnFailed, TurnMetrics, UserText

__all__ = ["TurnResult", "append_metrics", "render_turn", "report"]


@dataclass
class TurnResult:
    """What a printed turn came to."""

    transcript: str = ""
    answer: str = ""
    metrics: TurnMetrics | None = None
    failed: str | None = None
    """Why the turn has no complete answer (None: it has one)."""


async def render_turn(
    frames: AsyncIterator[Frame],
    out: TextIO,
    *,
    feed: Callable[[Frame], None] | None = None,
    prefix: str = "",
    show_user: bool = True,
) -> TurnResult:
    """Print a turn as it happens: the transcript, then the answer token by token (after
    ``prefix``). Every frame is also handed to ``feed`` (e.g. the audio output)."""
    result = TurnResult()
    started = False
    async for frame in frames:
        if feed is not None:
            feed(frame)
        if isinstance(frame, UserText) and frame.final:
            result.transcript = frame.text
            if show_user:
                print(f"you: {frame.text}", file=out, flush=True)
        elif isinstance(frame, ToolUsed) and show_user:
            print(f"(tool {frame.name} {frame.arguments} -> {frame.output})", file=out, flush=True)
        elif isinstance(frame, LLMToken):
            if not started:
                out.write(prefix)
                started = True
            out.write(frame.text)
            out.flush()
            result.answer += frame.text
        elif isinstance(frame, TurnMetrics):
            result.metrics = frame
        elif isinstance(frame, TurnFailed):
            result.failed = frame.message
        elif isinstance(frame, Interrupt):
            result.failed = f"turn {frame.reason}"
    if started:
        out.write("\n")
        out.flush()
    return result


def report(
    result: TurnResult, err: TextIO, *, notes: Iterable[str | None] = (), metrics: Path | None
) -> int:
    """After a turn: its error, or its timings and ``notes`` (on ``err``), its metrics
    appended to ``metrics``. Returns the exit code (1: the turn failed)."""
    if result.failed:
        print(f"voicegrok: error: {result.failed}", file=err)
        return 1
    m = result.metrics
    if m is not None:
        print(f"[{m.summary()}]", file=err)
    for line in notes:
        if line:
            print(line, file=err)
    append_metrics(metrics, m)
    return 0


def append_metrics(path: Path | None, metrics: TurnMetrics | None) -> None:
    """Append one JSON line of the turn's metrics to ``path`` (nothing when either is None)."""
    if path is not None and metrics is not None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(metrics.as_dict()) + "\n")
