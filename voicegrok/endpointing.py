"""End-of-turn detection from per-window speech probabilities (pure logic, no I/O).

An utterance starts when ``min_speech_ms`` of windows in a row are voiced (probability at
least ``threshold``); it then includes ``preroll_ms`` of audio from before the start, so the
first syllable is never clipped. It ends after ``end_silence_ms`` of windows below
``neg_threshold`` (hysteresis: a dip between the two thresholds is still speech), or at
``max_utterance_s``. A pause shorter than ``end_silence_ms`` never splits an utterance.

Before that, after ``pause_ms`` of silence, it reports ``Paused`` with the utterance so far:
the listener transcribes it and may end the turn early when the words look finished. If
the person then speaks again (``min_speech_ms`` voiced in a row) before the end, it reports
``Resumed`` and the utterance goes on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .audio import WHISPER_RATE_HZ, FloatAudio, rms_dbfs
from .text import goes_on, looks_complete, trails_off

__all__ = [
    "Ended",
    "EndpointConfig",
    "Endpointer",
    "Paused",
    "Resumed",
    "Started",
    "prepares_answer",
    "reads_needed",
    "when_to_answer",
]


SOUNDS_UNFINISHED = 0.5
"""The end-of-turn model's probability under which the voice sounds unfinished."""


@dataclass(frozen=True)
class EndpointConfig:
    threshold: float = 0.5
    """Probability at or above which a window starts speech."""
    neg_threshold: float = 0.35
    """Probability below which a window counts as silence once speech has started."""
    min_speech_ms: int = 64
    """Voiced time in a row needed to start an utterance (shorter blips are ignored). It is
    most of the barge-in delay: 64 ms is two 32 ms windows of speech, give or take where
    the windows fall on the first syllable (96 ms: a window more), and the echo and noise
    tests still start no turn. A lower ``threshold`` would save a window now and then, but
    a 100 Hz mains buzz with its harmonic comes just under 0.5."""
    end_silence_ms: int = 480
    """Silence that ends the turn. Lower answers sooner but may cut a slow speaker short."""
    pause_ms: int = 160
    """Silence after which the words so far are transcribed; when they look like a finished
    sentence the turn ends there (and is withdrawn if the person goes on)."""
    question_confirm_ms: int = 320
    """Silence after which the answer to a finished-looking question (``?``) is let out (it
    is prepared from ``pause_ms`` on): by then the answer is ready anyway, and a person who
    only paused is rarely talked over."""
    confirm_ms: int = 380
    """The same for other finished-looking words: a statement ("I'd like to visit New York
    for two days.") is often followed by the request after a breath of 300 ms or so."""
    speculate: bool = True
    """At the pause, also start the answer when the words do not look finished, holding it
    back until ``end_silence_ms``: the person then hears it at once, not after the
    end-of-turn silence plus the time to answer."""
    preroll_ms: int = 300
    """Audio kept from before the start of speech."""
    tail_ms: int = 150
    """Audio kept after the last voiced window (whisper likes a little silence)."""
    max_utterance_s: float = 30.0
    done_confirm_ms: int = 250
    """With an end-of-turn model: silence after which words that look finished, in a
    voice that sounds finished (its probability at least ``done_threshold``), are let out.
    On 2 cores the answer's first sound is ready about 400 ms after the last word, so a
    wait this short costs a person nothing; 200 ms let out "I'd like to visit New York
    City for two days." in the slowed Piper voice, 360 ms before "Can you make an
    itinerary?" (``voicegrok bench turns``, same run: 13.3% of the set's turns cut off
    against 16.7%; heard, 3 runs each in turns: the same p50 within the runs' spread)."""
    done_threshold: float = 0.8
    """The end-of-turn model's probability from which the voice sounds finished. On the
    turn-taking set (``voicegrok bench turns``), 0.9 cut fewer turns off in their pauses
    than 0.8 only in the voices whose prosody the model cannot read (espeak-ng's, Piper's
    slowed down), and let finished turns out 460 ms later (p50); for the natural Piper
    voice both cut off 1 turn in 12, at the same latency."""
    unsure_end_ms: int = 800
    """With an end-of-turn model: the end-of-turn silence when the words or the voice leave
    doubt (it replaces ``end_silence_ms``)."""
    read_threshold: float = 0.4
    """With a model of the words too (:class:`~voicegrok.engines.text_turn.TextTurn`): the
    probability from which finished-looking words in a voice that leaves doubt (the
    end-of-turn model between 0.5 and ``done_threshold``) read as a finished request. Of
    the transcripts at the turn-taking set's pauses, the first halves of sentences scored
    0.30 at most ("What is the best way to get?"; "How long does it take?" 0.14, "Can you
    tell me?" 0.003), and 19 of 43 whole turns scored 0.4 or more (plain questions
    0.6-0.9)."""
    read_against_voice: float = 0.5
    """The same where the voice sounds unfinished (the end-of-turn model under 0.5): the
    model cannot read some voices' prosody and says so of finished questions ("How far is
    the moon from the earth?" 0.42 in Piper's joe, the demo's "And now, can you do this
    for Atlanta, Georgia also?" 0.08 as recorded), which then waited ``unsure_end_ms``.
    The words must read more clearly finished then: on the turn-taking set, no first half
    of a sentence read over 0.29, and those questions read 0.60-0.86."""
    read_confirm_ms: int = 320
    """Silence after which such words are let out: by then the answer is not ready yet."""
    unfinished_end_ms: int = 1500
    """With an end-of-turn model: the end-of-turn silence when the words go on ("So", "what
    about...") or the voice sounds unfinished with them ("I'd like to book | a table")."""
    quiet_db: float = 30.0
    """Audio this far below the utterance's loudest window holds no words (see
    :meth:`Endpointer.words_after`)."""


@dataclass(frozen=True)
class Started:
    start_sample: int
    """Position of the first voiced sample in the stream."""


@dataclass(frozen=True, eq=False)
class Paused:
    audio: FloatAudio
    """The utterance so far: pre-roll, speech and a short tail."""
    end_sample: int
    """Position just after the last voiced sample."""


@dataclass(frozen=True)
class Resumed:
    """Speech again after a ``Paused``: the utterance continues."""


@dataclass(frozen=True, eq=False)
class Ended:
    audio: FloatAudio
    """The utterance: pre-roll, speech and a short tail."""
    start_sample: int
    end_sample: int
    """Position just after the last voiced sample."""
    audio_start_sample: int
    """Position of ``audio[0]`` in the stream (before ``start_sample`` by the pre-roll)."""


class Endpointer:
    """Feed it windows and their speech probability; it reports starts and ends."""

    def __init__(
        self,
        config: EndpointConfig | None = None,
        *,
        sample_rate_hz: int = WHISPER_RATE_HZ,
        window_samples: int = 512,
    ) -> None:
        self.config = config or EndpointConfig()
        self._rate = sample_rate_hz
        self._win = window_samples
        ms_per_window = 1000 * window_samples / sample_rate_hz
        self._min_speech = max(1, round(self.config.min_speech_ms / ms_per_window))
        self._ms_per_window = ms_per_window
        self._end_silence = max(1, round(self.config.end_silence_ms / ms_per_window))
        self._end_now = self._end_silence
        """The end-of-turn silence of the utterance in progress (see :meth:`end_after`)."""
        self._pause = max(1, round(self.config.pause_ms / ms_per_window))
        self._preroll = round(self.config.preroll_ms / ms_per_window)
        self._tail = round(self.config.tail_ms / ms_per_window)
        self._max = round(self.config.max_utterance_s * 1000 / ms_per_window)
        self._history: deque[FloatAudio] = deque(maxlen=self._preroll + self._min_speech)
        self._pos = 0
        self._run = 0
        self._speaking = False
        self._windows: list[FloatAudio] = []
        self._levels: list[float] = []
        """Loudness (dBFS) of each window of :attr:`_windows`..."""
        self._loudest = float("-inf")
        """... and of the loudest of them."""
        self._start = 0
        self._utterance_start = 0
        self._last_voiced_end = 0
        self._silence = 0
        self._paused = False
        self._resume_run = 0

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def onset(self) -> bool:
        """Voiced windows have come in silence (between utterances, or in a pause), not yet
        enough of them to start or resume speech."""
        if not self._speaking:
            return self._run > 0
        return self._paused and self._resume_run > 0

    @property
    def position(self) -> int:
        """Samples fed so far (the end of :meth:`utterance` in the stream)."""
        return self._pos

    @property
    def utterance_samples(self) -> int:
        """Length of :meth:`utterance` (without joining its windows)."""
        return self._pos - self._utterance_start if self._speaking else 0

    @property
    def last_voiced_end(self) -> int:
        """Position just after the utterance's last voiced window."""
        return self._last_voiced_end

    @property
    def voiced_ms(self) -> float:
        """How long the current (or last) utterance has been voiced: from its first voiced
        window to the end of its last."""
        return max(0, self._last_voiced_end - self._start) * 1000 / self._rate

    @property
    def silent_ms(self) -> float:
        """Silence since the last voiced window of the utterance in progress."""
        return self._silence * 1000 * self._win / self._rate if self._speaking else 0.0

    def words_after(self, position: int) -> bool:
        """Whether the utterance may hold words after stream position ``position``: some
        window from there to the last voiced one is no more than ``quiet_db`` below its
        loudest. The VAD's speech probability falls a window or two after the words end,
        so a transcript of the audio up to a moment just after them already holds every
        word although it ends before :attr:`last_voiced_end`."""
        if position >= self._last_voiced_end or not self._levels:
            return False
        first = max(0, (position - self._utterance_start) // self._win)
        last = (self._last_voiced_end - self._utterance_start + self._win - 1) // self._win
        tail = self._levels[first:last]
        return not tail or max(tail) > self._loudest - self.config.quiet_db

    def end_after(self, silence_ms: float) -> None:
        """End the utterance in progress after ``silence_ms`` of silence instead of
        ``end_silence_ms`` (until the person speaks again)."""
        self._end_now = max(1, round(silence_ms / self._ms_per_window))

    def utterance(self) -> FloatAudio:
        """The audio of the utterance in progress (empty when nobody is speaking)."""
        if not self._speaking:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(self._windows)

    def as_paused(self) -> FloatAudio:
        """The audio a ``Paused`` now would hold: the utterance to its last voiced window
        and a tail of ``tail_ms``, the part of the tail not heard yet filled with digital
        silence (as the end-of-turn model's input is padded before the speech)."""
        if not self._speaking:
            return np.zeros(0, dtype=np.float32)
        audio = self._audio()
        want = self._last_voiced_end + self._tail * self._win - self._utterance_start
        return np.pad(audio, (0, max(0, want - len(audio))))

    def feed(
        self, window: FloatAudio, probability: float
    ) -> Started | Paused | Resumed | Ended | None:
        pos = self._pos
        self._pos += len(window)
        if not self._speaking:
            self._history.append(window)
            self._run = self._run + 1 if probability >= self.config.threshold else 0
            if self._run < self._min_speech:
                return None
            self._speaking = True
            self._start = pos - (self._run - 1) * self._win
            kept = min(len(self._history), self._run + self._preroll)
            self._windows = list(self._history)[-kept:]
            self._levels = [rms_dbfs(w) for w in self._windows]
            self._loudest = max(self._levels, default=float("-inf"))
            self._utterance_start = self._pos - kept * self._win
            self._last_voiced_end = self._pos
            self._silence = 0
            self._paused = False
            self._history.clear()
            return Started(self._start)
        self._windows.append(window)
        level = rms_dbfs(window)
        self._levels.append(level)
        self._loudest = max(self._loudest, level)
        if self._paused:
            # After a pause, only clear speech (not a breath) counts as going on.
            self._resume_run = self._resume_run + 1 if probability >= self.config.threshold else 0
            if self._resume_run >= self._min_speech:
                self._paused = False
                self._end_now = self._end_silence
                self._silence = 0
                self._last_voiced_end = self._pos
                return Resumed()
            if not self._resume_run:
                self._silence += 1
        elif probability >= self.config.neg_threshold:
            self._silence = 0
            self._last_voiced_end = self._pos
        else:
            self._silence += 1
        if self._silence >= self._end_now or len(self._windows) >= self._max:
            return self._end()
        if not self._paused and self._silence == self._pause:
            self._paused = True
            self._resume_run = 0
            return Paused(audio=self._audio(), end_sample=self._last_voiced_end)
        return None

    def _audio(self) -> FloatAudio:
        keep_until = min(self._pos, self._last_voiced_end + self._tail * self._win)
        return np.concatenate(self._windows)[: keep_until - self._utterance_start]

    def _end(self) -> Ended:
        ended = Ended(
            audio=self._audio(),
            start_sample=self._start,
            end_sample=self._last_voiced_end,
            audio_start_sample=self._utterance_start,
        )
        self._speaking = False
        self._paused = False
        self._run = 0
        self._windows = []
        self._levels, self._loudest = [], float("-inf")
        self._end_now = self._end_silence
        return ended


def prepares_answer(text: str, config: EndpointConfig) -> bool:
    """With an end-of-turn model, whether an answer to ``text`` is prepared at a pause
    whatever the model says (:func:`when_to_answer` gives it a hold then): any words but
    ones trailing away, which say the person is clearly not done. (With ``speculate``
    off, the model's answer alone can still have finished words prepared.)"""
    return bool(text) and config.speculate and not trails_off(text)


def reads_needed(text: str, sounds_done: float | None, config: EndpointConfig) -> bool:
    """Whether the words' model can change :func:`when_to_answer`'s verdict: they look
    finished and the voice does not sound finished."""
    return sounds_done is not None and sounds_done < config.done_threshold and looks_complete(text)


def _reads_finished(reads_done: float | None, sounds_done: float, config: EndpointConfig) -> bool:
    if reads_done is None:
        return False
    needed = (
        config.read_threshold if sounds_done >= SOUNDS_UNFINISHED else config.read_against_voice
    )
    return reads_done >= needed


def when_to_answer(
    text: str,
    sounds_done: float | None,
    config: EndpointConfig,
    reads_done: float | None = None,
) -> tuple[int | None, int]:
    """At a pause: how much silence lets out the answer prepared from ``text`` (None: none
    is prepared), and how much ends the turn.

    ``sounds_done``: the end-of-turn model's probability that the voice has finished (None:
    no model). Without one, words that look finished are answered after
    ``question_confirm_ms`` or ``confirm_ms``, others at ``end_silence_ms``. With one:

    - finished words in a voice that sounds finished (``done_threshold``): after
      ``done_confirm_ms``;
    - finished words in a voice that does not sound finished, which read as finished
      (``reads_done``, the words' model, at least ``read_threshold``; at least
      ``read_against_voice`` where the voice sounds unfinished, which also ends the
      turn then): after ``read_confirm_ms``;
    - words that go on ("So", "I'd like the", "what about..."), or unfinished words in a
      voice that does not sound finished either: after ``unfinished_end_ms``;
    - anything else leaves doubt: after ``unsure_end_ms``.
    """
    speculate = prepares_answer(text, config)
    if sounds_done is None:
        if looks_complete(text):
            question = text.rstrip().endswith("?")
            hold = config.question_confirm_ms if question else config.confirm_ms
            return hold, config.end_silence_ms
        return (config.end_silence_ms if speculate else None), config.end_silence_ms
    finished = looks_complete(text)
    if finished and sounds_done >= config.done_threshold:
        return config.done_confirm_ms, config.unsure_end_ms
    if reads_needed(text, sounds_done, config) and _reads_finished(reads_done, sounds_done, config):
        # against the voice, the turn ends there too, as it did at ``unsure_end_ms`` before:
        # speech after it is a new turn, an interruption its words confirm, so that the
        # answer's own echo on open speakers cannot withdraw it as the person going on
        end = config.read_confirm_ms if sounds_done < SOUNDS_UNFINISHED else config.unsure_end_ms
        return config.read_confirm_ms, end
    if goes_on(text) or (not finished and sounds_done < SOUNDS_UNFINISHED):
        end = config.unfinished_end_ms
    else:
        end = config.unsure_end_ms
    return (end if speculate else None), end
