"""The live conversation: microphone in, speaker out, turn after turn, with barge-in."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .audio import WHISPER_RATE_HZ
from .frames import (
    Alert,
    Frame,
    Greeting,
    Interrupt,
    SpeechStarted,
    TTSAudio,
    TurnConfirmed,
    TurnRetracted,
    TurnStarted,
)
from .turns import (
    Decision,
    EditHistory,
    EndTurn,
    Forget,
    KeepHeard,
    PausePlayback,
    Report,
    ResumePlayback,
    Show,
    StopPlayback,
    TurnController,
)

__all__ = ["AudioOutput", "LiveSession", "View"]

GREETING_MAX_S = 15.0
"""The longest the session waits for its greeting to be played before it listens."""
GREETING_ECHO_S = 0.3
"""How long the greeting's echo may go on after its last sample has been played (the
device's latency, the room): the listener still hears silence meanwhile."""


class _History(Protocol):
    def reset(self) -> None: ...


class LiveAssistant(Protocol):
    """What the live loop needs of an assistant in listening mode: a local
    :class:`~voicegrok.assistant.Assistant` or a :class:`~voicegrok.remote.RemoteAssistant`."""

    @property
    def conversation(self) -> _History: ...

    async def hear(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        *,
        hears_over_speaker: bool = True,
    ) -> None: ...

    async def push_text(self, text: str) -> int: ...

    async def push_audio(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        speech_end_s: float | None = None,
    ) -> int: ...

    async def end_turn(self, turn_id: int, reason: str) -> None: ...

    async def edit_history(self, turn_id: int, edit: KeepHeard | Forget) -> None: ...

    def frames(self) -> AsyncIterator[Frame]: ...


def _voice(assistant: LiveAssistant) -> Callable[[str], AsyncIterator[bytes]] | None:
    """How ``assistant`` says a text outside any turn, if it can (a local one can)."""
    return getattr(assistant, "speak_alert", None)


class AudioOutput(Protocol):
    """What the live loop needs of a speaker (see :class:`~voicegrok.adapters.speaker.Speaker`)."""

    @property
    def sample_rate_hz(self) -> int:
        """The rate of ``played_bytes`` and ``queued_bytes`` (16-bit mono)."""
        ...

    @property
    def played_bytes(self) -> int: ...

    @property
    def queued_bytes(self) -> int: ...

    def play(self, pcm: bytes) -> None: ...

    def clear(self) -> None: ...

    def pause(self) -> None:
        """Go silent at once, keeping what is queued (until ``resume``)."""
        ...

    def resume(self) -> None: ...

    @property
    def buffered_s(self) -> float: ...


_NEEDS_PLAYBACK = (SpeechStarted, TurnStarted, TurnRetracted, TurnConfirmed, Interrupt)
"""Frames whose decision depends on where playback stands (is an answer still heard?)."""

View = Callable[[Frame], None]
"""Something that shows a conversation: it gets every frame of the current turn, the
control frames (speech started, interrupted, retracted) and partial transcripts."""


class LiveSession:
    """Drives an :class:`Assistant` in listening mode and plays its answers.

    - hands every frame worth showing to ``view`` (a console printer, the terminal UI);
    - plays reply audio as it comes (gapless, the speaker buffers);
    - barge-in: when the person starts speaking during an answer, playback pauses at once;
      once their words are known, an aside ("mm-hmm", a cough, its own voice heard back)
      lets it play on, anything else cancels the turn, and the history keeps only the
      clauses actually played;
    - takes commands: a typed question, interrupt, a new conversation, mute, push-to-talk;
    - writes one JSON line of metrics per turn (``metrics_path``), including the time from
      the end of speech to the first reply sample handed to the device.
    """

    def __init__(
        self,
        assistant: LiveAssistant,
        speaker: AudioOutput,
        view: View | None = None,
        metrics_path: Path | None = None,
        on_metrics: Callable[[dict[str, object]], None] | None = None,
        after_turn: Callable[[], object] | None = None,
        figures: Callable[[], dict[str, object]] | None = None,
        hears_over_speaker: Callable[[], bool] | None = None,
        greeting: str = "",
        after_greeting: Callable[[], None] | None = None,
    ) -> None:
        """Speech over an answer pauses it, and its words decide whether it stops (see
        :class:`~voicegrok.turns.TurnController`); unless the assistant is a server's,
        which stops its answers itself (``stops_answers_itself``: ``connect``).
        ``hears_over_speaker``: whether the microphone now hears the person over the
        speaker (the echo canceller's; None: always). ``greeting``: see
        :meth:`will_greet` ("": none); ``after_greeting`` is called once it has been
        played (the devices' ``relearn_echo``)."""
        self.assistant = assistant
        self.speaker = speaker
        self.view: View = view or (lambda _frame: None)
        self.metrics_path = metrics_path
        self.on_metrics = on_metrics
        self.after_turn = after_turn
        """Run on a thread of its own once a turn has been heard (and its metrics written):
        housekeeping, e.g. giving freed memory back to the system."""
        self.figures = figures
        """More figures for each metrics row, from the devices (the echo canceller's)."""
        self._hears_over_speaker = hears_over_speaker or (lambda: True)
        self._chores: set[asyncio.Future[object]] = set()
        remote = bool(getattr(assistant, "stops_answers_itself", False))
        self.turns = TurnController(confirm_interruptions=not remote)
        """Owns each turn's life; this loop carries out its decisions."""
        self.muted = False
        """The microphone is heard as silence (an utterance in progress ends normally)."""
        self.level = 0.0
        """Loudness of the latest microphone chunk (RMS, 0..1), for a level meter."""
        self.sample_rate_hz = WHISPER_RATE_HZ
        self._ptt: list[npt.NDArray[np.float32]] | None = None
        self.greeting = greeting
        self._after_greeting = after_greeting
        self._greeting_now = False

    @property
    def turns_done(self) -> int:
        return self.turns.turns_done

    @property
    def interruptions(self) -> int:
        return self.turns.interruptions

    @property
    def speaking(self) -> bool:
        return self.speaker.buffered_s > 0

    @property
    def answering(self) -> bool:
        """A turn is being answered or its answer is still playing."""
        self._played()
        return self.turns.answering or self._greeting_now

    def will_greet(self, *, listening: bool) -> bool:
        """Whether :meth:`run` says its greeting before it listens: when there is one, a
        microphone, and an echo canceller that has not yet heard the speaker. Until it has,
        it mutes the microphone whenever the speaker plays, so a first answer had to wait
        for the whole end-of-turn silence (480 ms, not 250) lest the person's next words
        be lost under it; and nobody could talk over it. Said first, the greeting teaches
        the canceller the room before anyone speaks. Where the speaker turns out to be
        heard in the microphone (open speakers), the canceller then learns it again on the
        first answer (``after_greeting``): at -6 dB, the echo of that answer's first
        words, after the speaker had been silent through the question, was once
        transcribed ("Certainly. Here's...") and stopped it. The greeting then only
        establishes a headset or a quiet speaker before the first turn, and that turn is
        let out as soon as any other."""
        speaks = _voice(self.assistant) is not None
        return bool(self.greeting) and listening and speaks and not self._hears_over_speaker()

    @property
    def recording(self) -> bool:
        """Push-to-talk is held: the microphone goes to the next turn, not to the VAD."""
        return self._ptt is not None

    async def run(
        self,
        audio: AsyncIterator[npt.NDArray[np.float32]] | None,
        sample_rate_hz: int = WHISPER_RATE_HZ,
        ready: Callable[[], object] | None = None,
    ) -> None:
        """Listen to ``audio`` (None: typed turns only) and answer until it ends or the task
        is cancelled. ``ready`` is called once it listens: after its greeting has been
        played, if it says one (:meth:`will_greet`)."""
        self.sample_rate_hz = sample_rate_hz

        async def feed() -> None:
            if audio is None:
                return
            async for chunk in audio:
                self.level = float(np.sqrt(np.mean(chunk**2))) if len(chunk) else 0.0
                if self._ptt is not None:
                    self._ptt.append(chunk)
                if self._ptt is not None or self.muted or self._greeting_now:
                    chunk = np.zeros_like(chunk)  # (the greeting: see _greet)
                await self.assistant.hear(
                    chunk, sample_rate_hz, hears_over_speaker=self._hears_over_speaker()
                )

        async def watch_playback() -> None:
            while True:
                await asyncio.sleep(0.05)
                self.poll()

        async def show() -> None:
            async for frame in self.assistant.frames():
                await self.handle(frame)

        async def ring() -> None:
            alerts = getattr(self.assistant, "alerts", None)
            if alerts is not None:  # a local assistant's timers
                async for text in alerts():
                    await self.alert(text)

        feeder = asyncio.create_task(feed())
        watcher = asyncio.create_task(watch_playback())
        shower = asyncio.create_task(show())
        ringer = asyncio.create_task(ring())
        self._greeting_now = self.will_greet(listening=audio is not None)  # (shown at once)
        greeter = asyncio.create_task(self._greet())
        try:
            # a finite recording ends the session when it ends; no audio: until cancelled
            waited = {shower} if audio is None else {shower, feeder}
            done, _ = await asyncio.wait({greeter, *waited}, return_when=asyncio.FIRST_COMPLETED)
            if greeter in done:
                greeter.result()
                if ready is not None:
                    ready()
                done, _ = await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # raise what went wrong
        finally:
            for task in (greeter, feeder, watcher, shower, ringer):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._greeting_now = False
            self.poll(final=True)

    async def _greet(self) -> None:
        """Say the greeting, if :meth:`run` is to, and wait until it has been played. The
        echo canceller hears the microphone meanwhile and learns from it; the listener
        hears silence, so the greeting's echo can never be taken for words (at -6 dB on
        the rig, "Hi, I'm voice gr- What can I do for you today?" once was, and was
        answered), and nobody could be heard over it yet anyway."""
        if not self._greeting_now:
            return
        try:
            self.view(Greeting(turn_id=0, text=self.greeting))
            speak = _voice(self.assistant)
            assert speak is not None
            async for pcm in speak(self.greeting):
                self.speaker.play(pcm)
            with contextlib.suppress(TimeoutError):  # (a stuck device: listen anyway)
                async with asyncio.timeout(GREETING_MAX_S):
                    while self.speaker.buffered_s > 0:  # noqa: ASYNC110 (a device's buffer)
                        await asyncio.sleep(0.05)
            await asyncio.sleep(GREETING_ECHO_S)
            if self._after_greeting is not None:
                self._after_greeting()
        finally:
            self._greeting_now = False

    # ------------------------------------------------------------------ commands

    async def ask(self, text: str) -> None:
        """A typed question: interrupts the answer in progress, then is answered like a
        spoken one (text and voice)."""
        await self.interrupt()
        await self.assistant.push_text(text)

    async def alert(self, text: str) -> None:
        """A timer rang: the answer in progress stops, and ``text`` is said at once."""
        await self.interrupt()
        self.view(Alert(turn_id=0, text=text))
        speak = _voice(self.assistant)
        if speak is not None:
            async for pcm in speak(text):
                self.speaker.play(pcm)

    async def interrupt(self) -> bool:
        """Stop the answer in progress (as a barge-in would). False when there was none."""
        self._played()
        decisions = self.turns.interrupt()
        await self._carry_out(decisions)
        return bool(decisions)

    async def new_conversation(self) -> None:
        """Stop any answer and forget the conversation so far."""
        self._played()
        await self._carry_out(self.turns.forget_all())
        self.assistant.conversation.reset()

    def start_push_to_talk(self) -> None:
        """From now on the microphone is recorded for one turn (the VAD hears silence)."""
        if self._ptt is None:
            self._ptt = []

    async def stop_push_to_talk(self) -> bool:
        """End the recording and answer it at once (no end-of-turn silence to wait for).
        False when nothing was recorded."""
        chunks, self._ptt = self._ptt, None
        if not chunks:
            return False
        await self.interrupt()
        audio = np.concatenate(chunks)
        await self.assistant.push_audio(audio, self.sample_rate_hz)
        return True

    # ------------------------------------------------------------------ frames

    def _position_s(self, n_bytes: int) -> float:
        """A position in the speaker's stream, in seconds (16-bit mono)."""
        return n_bytes / 2 / self.speaker.sample_rate_hz

    def _played(self) -> None:
        """Tell the controller where playback stands; write what that finished."""
        self._write(self.turns.played(self._position_s(self.speaker.played_bytes)))

    def poll(self, *, final: bool = False) -> None:
        """Write the finished turn's metrics once its answer has been played out."""
        self._played()
        if final:
            self._write(self.turns.flush())

    def _write(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Report):
                self._write_metrics(d.row)

    async def handle(self, frame: Frame) -> None:
        """A frame out of the assistant: the turn controller decides, this loop acts."""
        if isinstance(frame, _NEEDS_PLAYBACK):  # the rest come by the hundred a second
            self._played()  # (the playback watcher keeps it current meanwhile)
        await self._carry_out(self.turns.feed(frame))

    async def _carry_out(self, decisions: list[Decision]) -> None:
        for d in decisions:
            if isinstance(d, Show):
                if isinstance(d.frame, TTSAudio):
                    self._play(d.frame)
                self.view(d.frame)
            elif isinstance(d, StopPlayback):
                self.speaker.clear()
            elif isinstance(d, PausePlayback):
                self.speaker.pause()
            elif isinstance(d, ResumePlayback):
                self.speaker.resume()
            elif isinstance(d, EndTurn):
                await self.assistant.end_turn(d.turn_id, d.reason)
            elif isinstance(d, EditHistory):
                await self.assistant.edit_history(d.turn_id, d.edit)
            elif isinstance(d, Report):
                self._write_metrics(d.row)

    def _play(self, frame: TTSAudio) -> None:
        start = self._position_s(self.speaker.queued_bytes)
        first_play_s = time.perf_counter() + self.speaker.buffered_s
        self.speaker.play(frame.pcm)
        end = self._position_s(self.speaker.queued_bytes)
        self.turns.queued(frame.turn_id, frame.clause_index, start, end, first_play_s=first_play_s)

    def _write_metrics(self, row: dict[str, object]) -> None:
        if self.figures is not None:
            row.update(self.figures())
        if self.on_metrics is not None:
            self.on_metrics(row)
        if self.metrics_path is not None:
            with self.metrics_path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")
        if self.after_turn is not None:
            chore = asyncio.get_running_loop().run_in_executor(None, self.after_turn)
            self._chores.add(chore)
            chore.add_done_callback(self._chores.discard)
