"""Run blocking engine calls off the event loop, on one dedicated thread per engine.

Lazy generators (whisper segments, llama tokens, piper chunks) are drained *inside* the
thread and their items handed to the loop one by one, so nothing blocks the loop and the
first item is usable as soon as it exists. Cancelling the consumer stops the generator
after the item being computed.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

__all__ = ["CoreShare", "EngineThread"]

T = TypeVar("T")
P = ParamSpec("P")

_ITEM, _END, _ERROR = 0, 1, 2

log = logging.getLogger(__name__)


class EngineThread:
    """One worker thread: calls run one after another, in the order they were made.

    With ``workers`` > 1, that many calls or streams run at once (an engine that can run
    two of them side by side, such as the voice serving many conversations)."""

    def __init__(self, name: str, workers: int = 1) -> None:
        self._name = name
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"voicegrok-{name}")
        self._queued: list[tuple[int, int, Callable[[], None]]] = []
        """Streams waiting for the thread, most urgent first (see :meth:`stream`)."""
        self._order = itertools.count()
        self._lock = threading.Lock()

    async def call(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn(*args, **kwargs)`` on the thread and return its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def stream(
        self, make: Callable[[], Iterator[T]], *, priority: int = 1
    ) -> AsyncIterator[T]:
        """Iterate ``make()`` on the thread; yields each item on the loop as it is produced.

        Streams waiting for the thread start in ``priority`` order (lower first; the same
        priority in the order they came): with many conversations on one engine, the first
        clause of an answer someone is waiting for goes ahead of later clauses of others."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[int, Any]] = asyncio.Queue()
        stop = threading.Event()
        made: list[Iterator[T]] = []

        def send(kind: int, value: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        def drain() -> None:
            if stop.is_set():  # its consumer went while it waited (a barge-in)
                return
            try:
                iterator = make()
                made.append(iterator)
                try:
                    for item in iterator:
                        send(_ITEM, item)
                        if stop.is_set():
                            break
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            except BaseException as e:  # handed to the consumer, raised there
                send(_ERROR, e)
            else:
                send(_END, None)

        future = loop.run_in_executor(self._pool, self._next_by_priority(priority, drain))
        try:
            while True:
                kind, value = await queue.get()
                if kind == _ITEM:
                    yield value
                elif kind == _END:
                    break
                else:
                    raise value
        finally:
            stop.set()
            # an iterator that waits for its items (a batching engine's answer) can be told
            # from here; a plain one stops after the item being made
            cancel = getattr(made[0], "cancel", None) if made else None
            if callable(cancel):
                cancel()
            if future.done():
                future.result()

    def _next_by_priority(self, priority: int, job: Callable[[], None]) -> Callable[[], None]:
        """A task for the pool that runs the most urgent stream waiting when it starts
        (each task runs one, so every stream runs once)."""
        with self._lock:
            heapq.heappush(self._queued, (priority, next(self._order), job))

        def run_next() -> None:
            with self._lock:
                _, _, chosen = heapq.heappop(self._queued)
            chosen()

        return run_next

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on the thread and wait for it (blocking: for loading, before any loop).

        Engines are loaded and warmed up on the thread that will run them: llama.cpp and
        CTranslate2 parallelize with OpenMP, which keeps one pool of worker threads for each
        thread that calls it; a second pool (a warm-up on the main thread, then turns on the
        engine thread) makes libgomp stop spinning between operations, and small models lose
        much of their speed waiting for workers to wake up.
        """
        return self._pool.submit(fn).result()

    def submit(self, fn: Callable[[], object]) -> None:
        """Queue background work (e.g. a cache warm-up) behind the calls already queued."""

        def run() -> None:
            try:
                fn()
            except Exception:
                log.warning("background work on %s failed", self._name, exc_info=True)

        self._pool.submit(run)

    def close(self, *, wait: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=True)


class CoreShare:
    """Shares the CPU cores between the LLM and the other engines.

    On 2 cores, llama.cpp with 2 threads next to a busy Piper (or whisper) thread falls to a
    fraction of its speed (its OpenMP threads wait on each other), while 1 LLM thread beside
    the other engine's thread keeps most of it. So the LLM takes every core while no other
    engine is working and leaves one to each that is (speech synthesized during the
    answer, a partial transcript still finishing when the turn starts).

    An engine on the critical path to the first sound (the first clause of an answer) may
    take every core for a moment (:meth:`exclusive`): the LLM then waits between two tokens
    (:meth:`wait_for_cores`), since what it writes meanwhile is not needed before that
    first clause has been heard.
    """

    exclusive_timeout_s = 2.0
    """The LLM never waits longer than this (a stuck engine must not stop the answer)."""
    speech_grace_s = 0.05
    """How long background work waits for speech to be made (see :meth:`let_speech_first`)."""

    def __init__(self, cores: int) -> None:
        self.cores = max(1, cores)
        self._counts = {"working": 0, "generating": 0, "exclusive": 0}
        self._conversations = 0
        self._changed = threading.Condition()

    @contextlib.contextmanager
    def _counting(self, what: str) -> Iterator[None]:
        with self._changed:
            self._counts[what] += 1
            self._changed.notify_all()
        try:
            yield
        finally:
            with self._changed:
                self._counts[what] -= 1
                self._changed.notify_all()

    def working(self) -> contextlib.AbstractContextManager[None]:
        """Marks another engine (speech synthesis, speech-to-text) using a core."""
        return self._counting("working")

    def generating(self) -> contextlib.AbstractContextManager[None]:
        """Marks the LLM at work (speech synthesis then waits until it is needed)."""
        return self._counting("generating")

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        """Marks an engine using every core: the LLM pauses until it is done."""
        return self._counting("exclusive")

    def wait_for_cores(self) -> None:
        """Block (the LLM, between two tokens) while an engine has every core."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._counts["exclusive"] == 0, timeout=self.exclusive_timeout_s
            )

    def let_speech_first(self) -> None:
        """Block work nobody waits for (the LLM evaluating the history for the next turn)
        behind speech that someone does: wait up to :attr:`speech_grace_s` for a synthesis
        to start, then while an engine has every core.

        An answer of one sentence is written before any of it is spoken: its last token
        ends the LLM's work, and its only clause is synthesized a moment later, with every
        core. The history warmed up in that moment took a core from it (on the rig, "The
        cat was a lazy one." took 197 ms to synthesize instead of 70)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._counts["working"] + self._counts["exclusive"] > 0,
                timeout=self.speech_grace_s,
            )
        self.wait_for_cores()

    def serving(self, conversations: int) -> None:
        """The LLM is answering this many conversations at once (a batching engine)."""
        self._conversations = conversations

    def serving_many(self) -> bool:
        """The LLM is answering several conversations: no engine takes every core for one
        of them (each pause of the LLM would delay all the others' answers)."""
        return self._conversations > 1

    def llm_busy(self) -> bool:
        return self._counts["generating"] > 0

    def llm_threads(self) -> int:
        return max(1, self.cores - self._counts["working"])
