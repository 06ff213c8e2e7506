"""``voicegrok bench soak``: a long conversation with the real terminal UI, spoken and typed
at a person's pace. Does it stay up, keep its memory and its speed?

One ``voicegrok ui --metrics FILE`` runs in a 140x40 terminal (tmux, :mod:`.terminal`) with
the virtual sound devices (:mod:`.rig`), its conversations kept in a temporary data folder
(``VOICEGROK_DATA_DIR``). For the minutes asked, the script of :data:`CONVERSATION` goes
round: the demo's spoken questions and follow-ups, a follow-up spoken over an answer a
moment after it started (an interruption), typed questions; then Ctrl+N and the next
conversation, as a person would start one. Each answer is heard to its end (its metrics
line, then a second of quiet) before the next turn.

A turn fails when nothing happens for :data:`NO_ANSWER_S` (no sound, no metrics line), when
its metrics line says ``failed``, or when the UI ends (the soak stops there). Heard latency
is :mod:`.heard`'s: the last voiced sample written to the microphone -> the first sound of
the answer recorded. The UI's resident memory is read from ``/proc`` every few seconds and
once the speaker is quiet after each turn; the report (:mod:`.soak_report`) compares those.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..demo import demo_dir, demo_recordings
from ..errors import VoicegrokError
from . import rig, terminal
from .commands import MetricsFile, Voicegrok, failure
from .heard import LEAD_IN_S, LEVEL, SETTLE_S, first_above, last_above, wait_quiet
from .memory import process_rss_mb
from .soak_report import Turn, soak_report
from .ui import type_prompt

__all__ = ["CONVERSATION", "Spoken", "Typed", "run_soak_bench"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Spoken:
    """The demo's question ``question`` (``turnN.wav``) spoken into the microphone."""

    question: int
    over: int | None = None
    """Spoken :data:`INTERRUPT_AFTER_S` after the answer is first heard, over it (an
    interruption): this other question of the demo."""


@dataclass(frozen=True, slots=True)
class Typed:
    """A question typed into the UI's input, then Enter."""

    text: str


Step = Spoken | Typed

CONVERSATION: tuple[Step, ...] = (
    Spoken(1, over=2),  # the long itinerary, cut short: "Can you put this ... in a table?"
    Typed("Which neighborhood would be the best to stay in?"),
    Spoken(3),
    Spoken(4),
    Typed("What is the cheapest way to get around?"),
    Spoken(1, over=4),
    Typed("Thanks. Is there anything I should avoid?"),
    Spoken(2),
)
"""One conversation (ten turns, every kind in the first two steps); Ctrl+N follows it. The
answers spoken over are itineraries (prose, long), not tables (short to hear)."""
NO_ANSWER_S = 90.0
"""A turn fails after this long with neither sound from the speaker nor a metrics line."""
INTERRUPT_AFTER_S = 1.5
"""How long an answer plays before words are spoken over it."""
RSS_EVERY_S = 5.0
"""How often the UI's resident memory is read."""


class _NoAnswer(Exception):
    """A turn got nothing for :data:`NO_ANSWER_S` (its reason is the message)."""


class _Ended(Exception):
    """The UI is no longer running."""


class _Memory(threading.Thread):
    """Reads the resident memory of process ``pid`` every :data:`RSS_EVERY_S` until stopped:
    ``samples`` of (seconds since ``t0``, MB)."""

    def __init__(self, pid: int, t0: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.t0 = pid, t0
        self.samples: list[tuple[float, float]] = []
        self._stopping = threading.Event()

    def sample(self) -> float | None:
        mb = process_rss_mb(self.pid)
        if mb is not None:
            self.samples.append((round(time.perf_counter() - self.t0, 1), round(mb, 1)))
        return mb

    def run(self) -> None:
        while not self._stopping.wait(RSS_EVERY_S):
            self.sample()

    def stop(self) -> None:
        self._stopping.set()
        self.join(RSS_EVERY_S + 1)


class _Soak:
    """The running soak: one UI, its metrics file, the microphone and the recording."""

    def __init__(
        self,
        term: terminal.Terminal,
        metrics: MetricsFile,
        mic: rig.Microphone,
        rec: rig.Recording,
        progress: Callable[[str], None],
    ) -> None:
        self.term, self.metrics, self.mic, self.rec = term, metrics, mic, rec
        self.progress = progress
        self.questions = {i: a for i, (_, a) in enumerate(demo_recordings(demo_dir()), start=1)}
        self.t0 = time.perf_counter()
        self.turns: list[Turn] = []
        self.idle_rss: list[tuple[float, float]] = []
        """(seconds into the soak, MB) once the speaker is quiet after each step."""
        self.new_conversations = 0
        self.stopped: str | None = None
        pid = term.pid()
        if pid is None:
            raise VoicegrokError("voicegrok ui ended before the soak began")
        self.memory = _Memory(pid, self.t0)
        """The UI's resident memory, read every few seconds while :meth:`run` runs."""

    def at_s(self) -> float:
        return round(time.perf_counter() - self.t0, 1)

    def _turn(self, kind: str, question: str) -> Turn:
        turn = Turn(n=len(self.turns) + 1, at_s=self.at_s(), kind=kind, question=question)
        self.turns.append(turn)
        return turn

    # ---------------------------------------------------------------- waiting

    def _alive(self) -> None:
        if not self.term.alive():
            raise _Ended

    def _sounding(self) -> bool:
        now = self.rec.now_s()
        return self.rec.loudness(now - 0.1, now) > LEVEL / 10

    def _answered(self, since: int) -> list[dict[str, object]]:
        """The rows from row ``since`` on once one of them is not interrupted (the answer);
        the speaker quiet for a second after it. :class:`_NoAnswer` after
        :data:`NO_ANSWER_S` of neither sound nor a new row."""
        rows = self.metrics.rows()
        last, seen = time.monotonic(), len(rows)
        while not any(not r.get("interrupted") for r in rows[since:]):
            self._alive()
            if len(rows) != seen or self._sounding():
                last, seen = time.monotonic(), len(rows)
            elif time.monotonic() - last > NO_ANSWER_S:
                raise _NoAnswer(f"no answer for {NO_ANSWER_S:g} s")
            time.sleep(0.05)
            rows = self.metrics.rows()
        self._quiet()
        return self.metrics.rows()[since:]

    def _quiet(self, timeout_s: float = NO_ANSWER_S) -> None:
        try:
            wait_quiet(self.rec, self.metrics, self.term.alive, "ui", timeout_s=timeout_s)
        except VoicegrokError as e:
            self._alive()
            raise _NoAnswer(failure(e)) from e

    def _first_sound(self, end_s: float, since: int) -> float | None:
        """When (``perf_counter``) the answer to words that ended at ``end_s`` was first
        heard; None when its row came first (an answer with no sound, or a failure)."""
        start = time.monotonic()
        while True:
            sound = first_above(self.rec.audio(self.rec.position_of(end_s)))
            if sound is not None:
                return end_s + sound / self.rec.RATE
            self._alive()
            if any(not r.get("interrupted") for r in self.metrics.rows()[since:]):
                return None
            if time.monotonic() - start > NO_ANSWER_S:
                raise _NoAnswer(f"nothing heard for {NO_ANSWER_S:g} s")
            time.sleep(0.05)

    # ---------------------------------------------------------------- turns

    def _say(self, question: int, lead_in_s: float = LEAD_IN_S) -> float:
        """Speak the demo's question; the moment its last voiced sample was due."""
        audio = self.questions[question]
        lead = np.zeros(int(lead_in_s * rig.MIC_RATE_HZ), dtype=np.float32)
        return self.mic.say(np.concatenate([lead, audio]), len(lead) + last_above(audio))

    def _heard_ms(self, end_s: float) -> float | None:
        """From the end of the words to the first sound after them (None: nothing heard, or
        sound was already playing when they ended)."""
        sound = first_above(self.rec.audio(self.rec.position_of(end_s)))
        return None if not sound else round(sound / self.rec.RATE * 1000, 1)

    def spoken(self, step: Spoken) -> None:
        turn = self._turn("spoken", f"turn{step.question}.wav")
        n = len(self.metrics.rows())
        end_s = self._say(step.question)
        turn.take(self._answered(n), heard_ms=self._heard_ms(end_s))

    def typed(self, step: Typed) -> None:
        turn = self._turn("typed", step.text)
        n = len(self.metrics.rows())
        type_prompt(self.term, step.text)
        turn.take(self._answered(n))

    def interruption(self, step: Spoken, over: int) -> None:
        first = self._turn("spoken", f"turn{step.question}.wav")
        n = len(self.metrics.rows())
        end_s = self._say(step.question)
        heard_at = self._first_sound(end_s, n)
        if heard_at is not None:
            time.sleep(max(0.0, heard_at + INTERRUPT_AFTER_S - time.perf_counter()))
        then = self._turn("spoken", f"turn{over}.wav (over the answer)")
        over_end_s = self._say(over, lead_in_s=0.0)
        rows = self._answered(n + 1)  # the first question's row, then the answer after it
        first.take(self.metrics.rows()[n : n + 1], heard_ms=self._heard_ms(end_s))
        then.take(rows, heard_ms=self._heard_ms(over_end_s))

    def step(self, step: Step) -> None:
        """One step of the script; a turn that fails is noted, and the soak goes on (unless
        the UI has ended: then :attr:`stopped` says so)."""
        before = len(self.turns)
        try:
            if isinstance(step, Typed):
                self.typed(step)
            elif step.over is None:
                self.spoken(step)
            else:
                self.interruption(step, step.over)
        except _NoAnswer as e:
            self.turns[-1].failed = self.turns[-1].failed or str(e)
            try:
                self._quiet(timeout_s=30)
            except _NoAnswer:
                pass
            except _Ended:
                self._ended()
        except (_Ended, terminal.TerminalError):
            if self.term.alive():
                raise
            self._ended()
        mb = self.memory.sample() if self.stopped is None else None
        if mb is not None:
            self.idle_rss.append((self.at_s(), round(mb, 1)))
        for turn in self.turns[before:]:
            self.progress(turn.line(mb))

    def _ended(self) -> None:
        screen = [s.strip() for s in self.term.screen().splitlines() if s.strip()]
        last = [s for s in screen if not s.startswith("Pane is dead")][-1:] or ["no output"]
        self.stopped = f"voicegrok ui ended ({last[0][:200]})"
        if self.turns:
            self.turns[-1].failed = self.turns[-1].failed or self.stopped

    def run(self, minutes: float) -> float:
        """The script, round and round, until ``minutes`` have passed (the step under way
        is finished) or the UI has ended; the seconds it ran."""
        self.memory.sample()
        self.memory.start()
        try:
            i = 0
            while self.stopped is None and time.perf_counter() - self.t0 < minutes * 60:
                if i and i % len(CONVERSATION) == 0:
                    self.term.type("C-n")  # a new conversation, as a person would start one
                    self.new_conversations += 1
                    time.sleep(SETTLE_S)
                self.step(CONVERSATION[i % len(CONVERSATION)])
                i += 1
        finally:
            self.memory.stop()
        return time.perf_counter() - self.t0


def run_soak_bench(
    settings: Settings, *, minutes: float = 60, progress: bool = True, python: str = sys.executable
) -> dict[str, Any]:
    """The soak for ``minutes`` of wall clock from the moment the UI is ready; its report
    (:func:`.soak_report.soak_report`). A failure to set it up or to drive it is a
    :class:`VoicegrokError` of one line, after every process started has been ended."""

    def say(message: str) -> None:
        if progress:
            print(f"… soak: {message}", file=sys.stderr, flush=True)

    if reasons := [r for r in (terminal.missing(), rig.missing()) if r]:
        raise VoicegrokError(f"bench soak needs {'; '.join(reasons)}")
    try:
        with tempfile.TemporaryDirectory(prefix="voicegrok-bench-soak-") as tmp:
            folder = Path(tmp)
            with rig.virtual_audio(folder / "pulse") as audio:
                env = dict(audio.env, VOICEGROK_DATA_DIR=str(folder / "data"))
                vg = Voicegrok(python, settings, env, folder / "ui")
                vg.folder.mkdir()
                metrics = MetricsFile(vg.folder / "metrics.jsonl")
                mic = audio.microphone()
                rec = audio.record()
                try:
                    with vg.ui(metrics) as term:
                        say(f"the UI is ready; {minutes:g} min of conversation")
                        time.sleep(SETTLE_S)  # a person does not speak the instant it is ready
                        soak = _Soak(term, metrics, mic, rec, say)
                        ran_s = soak.run(minutes)
                finally:
                    mic.close()
    except Exception as e:  # one line for the person; the traceback with -v
        log.info("bench soak failed", exc_info=True)
        raise VoicegrokError(f"bench soak: {failure(e)}") from e
    return soak_report(
        settings,
        minutes=minutes,
        ran_s=ran_s,
        turns=soak.turns,
        idle_rss=soak.idle_rss,
        rss_samples=soak.memory.samples,
        new_conversations=soak.new_conversations,
        stopped=soak.stopped,
    )
