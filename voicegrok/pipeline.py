"""The pipeline runner: owns the queues, the tasks, the turn ids and cancellation.

A stage is a small object with an ``accepts`` tuple of frame types and one async generator
method, ``process(frame)``, that yields what goes downstream. The runner:

- gives each stage one task and a bounded input queue (back-pressure: a slow stage slows
  the ones before it instead of buffering without end);
- passes frames a stage does not accept straight on, so a stage never forwards by hand
  what it does not understand; the types a stage lists in ``passes_while_busy`` go past
  it even while it is busy (a TTS stage pacing itself against playback must not hold the
  LLM's tokens back: that throttled generation to speaking pace);
- processes a stage's frames one at a time and in order; a stage that sets ``inline`` (pure
  bookkeeping that never waits, like splitting tokens into clauses) runs inside its worker
  instead of a task per frame: the LLM's tokens cross such stages one by one, and a task
  each would cost the event loop (and the LLM beside it) time per token;
- sends :class:`ControlFrame` s (speech started, interrupt) straight to the output, ahead
  of queued data, so a barge-in is never stuck behind a busy stage;
- on ``cancel_turn(turn_id)`` cancels the running ``process`` calls of that turn, drops
  its queued frames everywhere and any frame of it produced later (stale frames), and
  puts an :class:`Interrupt` on the output as the turn's last frame;
- turns an exception inside a stage into a :class:`TurnFailed` frame: the rest of that turn
  is cancelled, the frame goes straight to the output (it is the turn's last frame), and
  the pipeline keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from typing import Any, ClassVar, Protocol, TypeVar

from .errors import VoicegrokError
from .frames import ControlFrame, Frame, Interrupt, TurnFailed

__all__ = ["Background", "Pipeline", "Stage"]

T = TypeVar("T")

log = logging.getLogger(__name__)


class Stage(Protocol):
    """One step of the pipeline. Every stage states all three class attributes: one that
    is misspelt or missing is a type error, not a behaviour silently switched off."""

    accepts: ClassVar[tuple[type[Frame], ...]]
    """Frame types given to :meth:`process`; every other frame passes by untouched."""
    inline: ClassVar[bool]
    """Pure bookkeeping that never waits: run in the stage's worker, not a task per frame."""
    passes_while_busy: ClassVar[tuple[type[Frame], ...]]
    """Frame types that go past the stage while it is busy (ahead of its queue)."""

    def process(self, frame: Frame) -> AsyncIterator[Frame]:
        """Yield the frames that go downstream (include ``frame`` itself to pass it on)."""
        ...


class Background:
    """Work a stage starts and does not wait for (a transcription while the person is
    still speaking). The runner owns it: a cancelled turn's jobs are cancelled with it,
    and nothing outlives the pipeline."""

    def __init__(self) -> None:
        self._jobs: dict[asyncio.Future[Any], int] = {}

    def spawn(self, work: Coroutine[Any, Any, T], turn_id: int) -> asyncio.Future[T]:
        """Run ``work`` for ``turn_id`` in the background; the returned future is awaited
        (or not) by the stage."""
        job = asyncio.ensure_future(work)
        self._jobs[job] = turn_id
        job.add_done_callback(self._jobs.pop)
        return job

    def __len__(self) -> int:
        return len(self._jobs)

    def cancel(self, turn_id: int | None = None) -> None:
        """Cancel the jobs of ``turn_id`` (None: all of them)."""
        for job, turn in list(self._jobs.items()):
            if turn_id is None or turn == turn_id:
                job.cancel()


class _Stop:
    """Sentinel that flows through the queues when the pipeline closes."""


_STOP = _Stop()
_QueueItem = Frame | _Stop


class Pipeline:
    """Runs stages concurrently, connected by bounded queues.

    Use as ``async with Pipeline([...]) as p:``; ``await p.push(frame)`` feeds the first stage
    and ``async for frame in p.frames():`` reads what comes out of the last one.
    """

    def __init__(
        self,
        stages: Sequence[Stage],
        *,
        queue_size: int = 64,
        background: Background | None = None,
    ) -> None:
        """``background``: where the stages start work they do not wait for (given to
        them when they are made); the runner cancels it with its turn and on closing."""
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._stages = list(stages)
        self.background = Background() if background is None else background
        # Bounded between stages (back-pressure); the output is unbounded so that the end of
        # a turn (Interrupt, TurnFailed) can always be delivered without waiting.
        self._queues: list[asyncio.Queue[_QueueItem]] = [
            asyncio.Queue(queue_size) for _ in self._stages
        ]
        self._queues.append(asyncio.Queue())
        self._workers: list[asyncio.Task[None]] = []
        self._lanes: list[asyncio.Queue[_QueueItem]] = []
        """Stages with ``passes_while_busy``: the frames waiting for the stage itself."""
        # stage index -> (turn id, task) of the process() call running now
        self._running: dict[int, tuple[int, asyncio.Task[None]]] = {}
        self._cancelled: set[int] = set()
        self._closed = False

    async def __aenter__(self) -> Pipeline:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def start(self) -> None:
        if self._workers:
            return
        for i, stage in enumerate(self._stages):
            name = f"stage-{i}-{type(stage).__name__}"
            self._workers.append(asyncio.create_task(self._work(i, stage), name=name))

    @property
    def running_tasks(self) -> int:
        """How many ``process`` calls are running now (0 when idle)."""
        return sum(1 for _, t in self._running.values() if not t.done())

    def is_cancelled(self, turn_id: int) -> bool:
        return turn_id in self._cancelled

    async def push(self, frame: Frame) -> None:
        """Feed a frame to the first stage; waits while the pipeline is full."""
        if self._closed:
            raise RuntimeError("pipeline is closed")
        if frame.turn_id in self._cancelled:
            return
        if isinstance(frame, ControlFrame):
            self._queues[-1].put_nowait(frame)
            return
        await self._queues[0].put(frame)

    async def frames(self) -> AsyncIterator[Frame]:
        """What comes out of the last stage, until the pipeline is closed."""
        out = self._queues[-1]
        while True:
            item = await out.get()
            if isinstance(item, _Stop):
                return
            if item.turn_id in self._cancelled and not isinstance(item, (TurnFailed, Interrupt)):
                continue
            yield item

    def cancel_turn(self, turn_id: int, reason: str = "interrupted") -> None:
        """Cancel everything of ``turn_id`` at once: running work, queued frames, later frames.

        The output then gets ``Interrupt(turn_id)`` (once), so its reader knows the turn ended.
        """
        if turn_id in self._cancelled:
            return
        self._cancelled.add(turn_id)
        self.background.cancel(turn_id)
        for stage_turn, task in list(self._running.values()):
            if stage_turn == turn_id:
                task.cancel()
        for q in self._queues + self._lanes:
            _purge(q, turn_id)
        if reason:
            self._queues[-1].put_nowait(Interrupt(turn_id=turn_id, reason=reason))

    async def cancel_turn_and_wait(self, turn_id: int, reason: str = "interrupted") -> None:
        """``cancel_turn``, then wait until the turn's cancelled work has unwound."""
        tasks = [t for turn, t in list(self._running.values()) if turn == turn_id]
        self.cancel_turn(turn_id, reason)
        if tasks:
            await asyncio.wait(tasks)

    async def aclose(self) -> None:
        """Let queued frames drain through every stage, then stop the tasks."""
        if self._closed:
            return
        self._closed = True
        if self._workers:
            await self._queues[0].put(_STOP)
            _done, pending = await asyncio.wait(self._workers, timeout=30)
            for t in pending:
                t.cancel()
            for t in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await t
        self.background.cancel()

    async def abort(self) -> None:
        """Stop at once: cancel every task, drop whatever is queued."""
        self._closed = True
        for _, t in list(self._running.values()):
            t.cancel()
        for t in self._workers:
            t.cancel()
        for t in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.background.cancel()
        _purge_all(self._queues[-1])
        self._queues[-1].put_nowait(_STOP)

    async def _work(self, index: int, stage: Stage) -> None:
        inq, outq = self._queues[index], self._queues[index + 1]
        bypass = stage.passes_while_busy
        if not bypass:
            await self._work_in_order(index, stage, inq, outq)
            return
        lane: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._lanes.append(lane)
        worker = asyncio.create_task(self._work_in_order(index, stage, lane, outq))
        try:
            while True:
                item = await inq.get()
                if isinstance(item, _Stop):
                    await lane.put(item)  # the lane drains, then passes the stop on
                    await worker
                    return
                if isinstance(item, bypass):
                    if item.turn_id not in self._cancelled:
                        await outq.put(item)
                else:
                    await lane.put(item)
        finally:
            if not worker.done():
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    async def _work_in_order(
        self,
        index: int,
        stage: Stage,
        inq: asyncio.Queue[_QueueItem],
        outq: asyncio.Queue[_QueueItem],
    ) -> None:
        inline = stage.inline
        while True:
            item = await inq.get()
            if isinstance(item, _Stop):
                await outq.put(item)
                return
            if item.turn_id in self._cancelled:
                continue
            if not isinstance(item, stage.accepts):
                await outq.put(item)
                continue
            if inline:
                try:
                    await self._run(stage, item, outq)
                except Exception as error:
                    await self._fail(stage, item, error)
                continue
            task = asyncio.create_task(self._run(stage, item, outq))
            self._running[index] = (item.turn_id, task)
            try:
                # wait() rather than await: a cancelled turn must not cancel this worker.
                await asyncio.wait({task})
            except asyncio.CancelledError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                raise
            finally:
                self._running.pop(index, None)
            if task.cancelled():
                continue
            exc = task.exception()
            if exc is not None:
                await self._fail(stage, item, exc)

    async def _run(self, stage: Stage, frame: Frame, outq: asyncio.Queue[_QueueItem]) -> None:
        async for out in stage.process(frame):
            if out.turn_id in self._cancelled:
                continue
            if isinstance(out, ControlFrame):
                self._queues[-1].put_nowait(out)
            else:
                await outq.put(out)

    async def _fail(self, stage: Stage, frame: Frame, exc: BaseException) -> None:
        name = type(stage).__name__
        if isinstance(exc, VoicegrokError):
            message = str(exc)
        else:
            log.error("stage %s failed on %s", name, type(frame).__name__, exc_info=exc)
            message = f"{name} failed: {type(exc).__name__}: {exc}"
        if frame.turn_id in self._cancelled:
            return
        if frame.turn_id == 0:  # the microphone's stream, not a turn: it goes on
            self._queues[-1].put_nowait(TurnFailed(turn_id=0, message=message, stage=name))
            return
        self.cancel_turn(frame.turn_id, reason="")
        self._queues[-1].put_nowait(TurnFailed(turn_id=frame.turn_id, message=message, stage=name))


def _purge(q: asyncio.Queue[_QueueItem], turn_id: int) -> None:
    """Drop the queued frames of ``turn_id`` (keeps the order of the rest)."""
    kept: list[_QueueItem] = []
    while True:
        try:
            item = q.get_nowait()
        except asyncio.QueueEmpty:
            break
        if isinstance(item, _Stop) or item.turn_id != turn_id:
            kept.append(item)
    for item in kept:
        q.put_nowait(item)


def _purge_all(q: asyncio.Queue[_QueueItem]) -> None:
    while not q.empty():
        q.get_nowait()
