"""Timers and alarms of one conversation: what is pending and what is due (no I/O; the
assistant's ringer waits for :meth:`Timers.next_due_s` and says what :meth:`Timers.due`
returns)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Timer", "Timers", "describe_duration"]


@dataclass(frozen=True)
class Timer:
    id: int
    label: str
    """What it is for ("pasta"), or ""."""
    seconds: float
    """How long it was set for."""
    due_s: float
    """When it rings, on the ``Timers`` clock (``time.monotonic`` seconds)."""
    alarm: str = ""
    """For an alarm, the time of day it was set for ("7:30 a.m."), else ""."""

    def name(self) -> str:
        if self.alarm:
            return f"{self.alarm} alarm" if not self.label else f"{self.label} alarm"
        if self.label:
            return f"{self.label} timer"
        # "10-minute timer"
        return (
            describe_duration(self.seconds).replace(" ", "-").replace("s-", "-").rstrip("s")
            + " timer"
        )

    def alert(self) -> str:
        """What is said when it rings."""
        if self.alarm:
            return f"It's {self.alarm}. Your {self.name()} is ringing."
        return f"Time's up! Your {self.name()} is done."


class Timers:
    MAX = 20

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._ids = itertools.count(1)
        self._pending: dict[int, Timer] = {}
        self.on_change: Callable[[], None] = lambda: None
        """Called when a timer is added or cancelled (the ringer waits anew)."""

    def add(self, seconds: float, label: str = "", alarm: str = "") -> Timer:
        if len(self._pending) >= self.MAX:
            raise ValueError(f"{self.MAX} timers are running already")
        timer = Timer(next(self._ids), label, seconds, self._clock() + seconds, alarm)
        self._pending[timer.id] = timer
        self.on_change()
        return timer

    def pending(self) -> list[Timer]:
        return sorted(self._pending.values(), key=lambda t: t.due_s)

    def left_s(self, timer: Timer) -> float:
        return max(0.0, timer.due_s - self._clock())

    def cancel(self, label: str = "", *, every: bool = False) -> list[Timer]:
        """Cancel every timer (``every``), the ones whose name mentions ``label``, or the
        only one. Returns what was cancelled (nothing: nothing matched, or several did)."""
        pending = self.pending()
        if every:
            chosen = pending
        elif label:
            chosen = [t for t in pending if label.lower() in t.name().lower()]
        else:
            chosen = pending if len(pending) == 1 else []
        for timer in chosen:
            del self._pending[timer.id]
        if chosen:
            self.on_change()
        return chosen

    def next_due_s(self) -> float | None:
        """Seconds until the next timer rings (None: none is set)."""
        pending = self.pending()
        return None if not pending else max(0.0, pending[0].due_s - self._clock())

    def due(self) -> list[Timer]:
        """The timers whose time has come, taken off the list."""
        now = self._clock()
        ringing = [t for t in self.pending() if t.due_s <= now]
        for timer in ringing:
            del self._pending[timer.id]
        return ringing


def describe_duration(seconds: float) -> str:
    """``90`` -> "1 minute 30 seconds"."""
    left = round(seconds)
    parts = []
    for name, size in (("hour", 3600), ("minute", 60), ("second", 1)):
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n} {name}{'' if n == 1 else 's'}")
    return " ".join(parts) or "0 seconds"
