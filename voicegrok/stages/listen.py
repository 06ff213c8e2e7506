"""Listening stage: microphone chunks in; speech starts, partial transcripts and turns out.

It runs the streaming VAD on every chunk and speech-to-text while the person speaks:

- the first voiced window heard in silence is told at once (``SpeechOnset``, voiced), before
  it is long enough to start speech, and so is the end of such a run (whether it started
  speech or not): an answer playing pauses on it;
- every ``partial_every_ms`` of speech, the utterance so far is transcribed in the
  background and shown as a partial ``UserText`` (so the person sees they are heard);
- as soon as ``eager_ms`` of silence follow the last voiced window, the utterance is
  transcribed in the background, before anyone knows whether this is a pause for breath
  or the end of the turn;
- after a short pause (``EndpointConfig.pause_ms``), the transcript of the whole utterance
  is needed: the one already made or in progress is used when it covers the last voiced
  sample (so speech-to-text mostly runs while the pause is being measured), otherwise it is
  made now. When the words look like a finished sentence the turn starts right there, long
  before the end-of-turn silence, *tentatively*: the answer is prepared but held back until
  ``question_confirm_ms`` (a question) or ``confirm_ms`` of silence (``TurnConfirmed``),
  by when it is ready anyway; a person who only paused is not talked over. If they go on
  speaking before the end-of-turn silence, the turn is withdrawn (``TurnRetracted``:
  dropped unheard if not yet confirmed, cut off if it was) and the utterance continues;
- otherwise the turn also starts at the pause, tentatively (``EndpointConfig.speculate``),
  and is released only at the end-of-turn silence: the person hears it at once instead of
  after the silence plus the time to answer. With ``speculate`` off, the turn starts at
  the end-of-turn silence, with the transcript made at the pause.

While the microphone cannot hear the person over the speaker (``hears_over_speaker`` false:
an echo canceller not yet converged mutes it while the speaker plays), an answer started at
a pause is let out only at the end-of-turn silence (sooner, it muted the rest of the words:
"I'd like to visit New York City for two days," was answered alone), or at the settings'
``end_silence_ms`` when the model and the words both say the turn is finished.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..audio import StreamResampler
from ..endpointing import (
    Ended,
    EndpointConfig,
    Endpointer,
    Paused,
    Resumed,
    Started,
    prepares_answer,
    reads_needed,
    when_to_answer,
)
from ..engines import SpeechToText, TurnDetector, VoiceActivity, WordsDetector
from ..errors import first_line
from ..frames import (
    AudioChunk,
    Frame,
    Heard,
    SpeechOnset,
    SpeechStarted,
    TurnConfirmed,
    TurnFailed,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from ..pipeline import Background
from ..text import agreed_words
from ..threads import EngineThread

log = logging.getLogger(__name__)

FloatAudio = npt.NDArray[np.float32]


@dataclass
class _Transcript:
    """A transcription of the utterance up to ``end`` (a stream position), done or running."""

    task: asyncio.Future[str]
    turn_id: int
    end: int
    eager: bool = False
    """Started at a silence: shown as a partial only if the person speaks on."""
    used: bool = False
    """Shown as a partial, or taken as the final transcript."""
    sounds: asyncio.Future[float | None] | None = None
    """An eager one's: the end-of-turn model's verdict on the same audio, asked next to
    the transcription (see :meth:`ListenStage._sounds_at_pause`)."""


class ListenStage:
    accepts: ClassVar[tuple[type[Frame], ...]] = (AudioChunk,)
    inline: ClassVar[bool] = False
    passes_while_busy: ClassVar[tuple[type[Frame], ...]] = ()

    def __init__(
        self,
        vad: VoiceActivity,
        stt: SpeechToText,
        next_turn_id: Callable[[], int],
        config: EndpointConfig | None = None,
        *,
        vad_thread: EngineThread | None = None,
        stt_thread: EngineThread | None = None,
        partial_thread: EngineThread | None = None,
        partial_every_ms: int = 700,
        eager_ms: int = 32,
        background: Background | None = None,
        turn: TurnDetector | None = None,
        turn_thread: EngineThread | None = None,
        words: WordsDetector | None = None,
    ) -> None:
        """``background``: where transcriptions made while the person speaks run; give the
        pipeline's (:attr:`Pipeline.background`) so that the runner cancels them.
        ``turn``: an end-of-turn model, asked whether the voice sounds finished (see
        :func:`~voicegrok.endpointing.when_to_answer`) at the first silence, with the eager
        transcription, or at the pause when speech came between; it runs on
        ``turn_thread``, next to the transcription. ``words``: a model of the words, asked
        there when the voice leaves doubt about finished-looking words. ``eager_ms``: the
        silence after which the utterance is transcribed (a VAD window: it lags the words)."""
        if stt.sample_rate_hz != vad.sample_rate_hz:
            raise ValueError("the VAD and speech-to-text engines must use the same rate")
        self._vad = vad
        self._stt = stt
        self._background = Background() if background is None else background
        self._next_turn_id = next_turn_id
        self._endpointer = Endpointer(
            config, sample_rate_hz=vad.sample_rate_hz, window_samples=vad.window_samples
        )
        self._vad_thread = vad_thread or EngineThread("vad")
        self._stt_thread = stt_thread or EngineThread("stt")
        self._partial_thread = partial_thread or self._stt_thread
        """Partials run here (on a thread of their own, a partial still running when the
        person stops does not delay the end's transcript), and an eager one beside another."""
        self._turn = turn
        self._turn_thread = turn_thread or EngineThread("turn")
        self._words = words
        self._partial_every = int(partial_every_ms * vad.sample_rate_hz / 1000)
        self._eager_ms = eager_ms
        self._onset = False
        """A ``SpeechOnset`` (voiced) was given out, and not yet its end."""
        self._pending = np.zeros(0, dtype=np.float32)
        self._resampler = StreamResampler(vad.sample_rate_hz, np.float32)
        self._consumed = 0
        """Samples (at the engines' rate) received so far."""
        self._listened = 0
        """Samples whose VAD windows have been run and their frames given out."""
        self._turn_id = 0
        self._early = False
        """The current utterance's turn was started at a pause (and may be withdrawn)."""
        self._hold_ms: float | None = None
        """... and is held back until this much silence confirms it (``TurnConfirmed``)."""
        self._pause_text: str | None = None
        self._partial: _Transcript | None = None
        """The latest partial transcription (on ``partial_thread``)."""
        self._eager: _Transcript | None = None
        """The latest eager transcription, begun at a silence (on ``stt_thread``)."""
        self._partial_at = 0
        self._texts: list[tuple[int, str]] = []
        """The utterance's transcripts so far (background ones, done) and where each ends:
        the words the last two agree on are given to the next one as its beginning."""
        self._let_out: dict[int, asyncio.Future[bool]] = {}
        """Turns started at a pause: whether each was let out (True) or withdrawn."""

    async def released(self, turn_id: int) -> bool:
        """Wait until the turn is let out (True) or withdrawn when the person went on
        (False); a turn not started at a pause is let out from the start."""
        decided = self._let_out.get(turn_id)
        return True if decided is None else await asyncio.shield(decided)

    def _decide(self, turn_id: int, let_out: bool) -> None:
        decided = self._let_out.get(turn_id)
        if decided is not None and not decided.done():
            decided.set_result(let_out)
        for old in [t for t in self._let_out if t < turn_id - 8]:
            del self._let_out[old]

    def _to_engine_rate(self, chunk: AudioChunk) -> FloatAudio:
        return self._resampler(chunk.samples, chunk.sample_rate_hz)

    def _jobs(self) -> list[_Transcript]:
        return [j for j in (self._partial, self._eager) if j is not None]

    async def _transcribe(self, audio: FloatAudio) -> str:
        return (await self._stt_thread.call(self._stt.transcribe, audio)).strip()

    async def _transcript_until(self, end_sample: int, audio: FloatAudio) -> str:
        """The utterance's transcript up to ``end_sample`` (its last voiced sample): a
        background one when it covers that much, else a new one of ``audio``."""
        covering = [j for j in self._jobs() if self._covers(j, end_sample)]
        for job in sorted(covering, key=lambda j: not j.task.done()):  # a finished one first
            try:
                text = (await job.task).strip()
            except Exception:  # the decode is made again below
                continue
            job.used = True
            return text
        return await self._transcribe(audio)

    def _covers(self, job: _Transcript, end_sample: int) -> bool:
        """Whether ``job`` is of this utterance and heard every word up to ``end_sample``
        (its last voiced sample): it ends there or later, or nothing after its end is
        loud enough to be words (see :meth:`Endpointer.words_after`)."""
        if job.turn_id != self._turn_id:
            return False
        return job.end >= end_sample or not self._endpointer.words_after(job.end)

    def _sounds_at_pause(self, event: Paused) -> asyncio.Future[float | None]:
        """The end-of-turn model's verdict at a pause: the one asked with the eager
        transcription when that covers the pause's last voiced sample, else asked now.

        Asked with the eager transcription (one VAD window into the silence, its tail
        still to come filled with silence), it runs next to speech-to-text, on the other
        core, instead of next to the LLM's first token at the pause: on 2 cores it took
        the LLM from 60-70 ms to 100-125 ms to that token."""
        for job in self._jobs():
            if job.sounds is None or job.sounds.cancelled():
                continue
            if self._covers(job, event.end_sample):
                return job.sounds
        return asyncio.ensure_future(self._sounds_done(event.audio))

    async def _sounds_done(self, audio: FloatAudio) -> float | None:
        """The end-of-turn model's probability that the voice has finished (None: no
        model, or it failed: the pause and the words decide alone)."""
        if self._turn is None:
            return None
        return await self._verdict(self._turn.probability, audio, "the end-of-turn model")

    async def _verdict(self, model: Callable[[Any], float], of: object, name: str) -> float | None:
        """``model``'s probability (on the end-of-turn models' thread), None if it fails."""
        try:
            return await self._turn_thread.call(model, of)
        except Exception as e:
            log.warning("%s failed: %s", name, first_line(e))
            return None

    def _finished_partial(self) -> Frame | None:
        """The newest finished background transcript, as a partial, if not shown yet."""
        done = [j for j in self._jobs() if j.task.done() and not j.used]
        if not done:
            return None
        job = max(done, key=lambda j: j.end)
        if job.eager and self._endpointer.silent_ms > 0:
            return None  # kept for the pause, which is probably coming
        for j in done:
            j.used = True
        if job.task.cancelled() or job.task.exception() is not None:
            return None
        text = job.task.result().strip()
        if not text or job.turn_id != self._turn_id or self._early:
            return None
        return UserText(turn_id=self._turn_id, text=text, final=False)

    def _heard(self, frames: list[Frame]) -> list[Frame]:
        """``frames``, each transcript (or failure to make one) preceded by a ``Heard``
        that tells how long the speech has lasted."""
        voiced = round(self._endpointer.voiced_ms, 1)
        out: list[Frame] = []
        for f in frames:
            if isinstance(f, UserText):
                out.append(Heard(turn_id=f.turn_id, text=f.text, final=f.final, voiced_ms=voiced))
            elif isinstance(f, TurnFailed):
                out.append(Heard(turn_id=f.turn_id, text="", final=True, voiced_ms=voiced))
            out.append(f)
        return out

    def _turn_started(
        self, end_sample: int, arrived_s: float, *, tentative: bool = False
    ) -> TurnStarted:
        rate = self._vad.sample_rate_hz
        # the chunk's last sample arrived at ``arrived_s``
        speech_end_s = arrived_s - (self._consumed - end_sample) / rate
        return TurnStarted(
            turn_id=self._turn_id,
            speech_end_s=speech_end_s,
            audio_end_s=end_sample / rate,
            source="speech",
            tentative=tentative,
        )

    def _start_turn(
        self, text: str, end_sample: int, arrived_s: float, *, tentative: bool = False
    ) -> list[Frame]:
        if not text:
            return [TurnFailed(turn_id=self._turn_id, message="no words were heard", stage="stt")]
        if tentative:
            self._let_out[self._turn_id] = asyncio.get_running_loop().create_future()
        return [
            self._turn_started(end_sample, arrived_s, tentative=tentative),
            UserText(turn_id=self._turn_id, text=text, final=True, source="speech"),
        ]

    @property
    def listened_s(self) -> float:
        """Seconds of audio taken in so far, with what they meant (speech started, a turn)
        given out."""
        return self._listened / self._vad.sample_rate_hz

    def speech_turn(self) -> int | None:
        """The turn of the speech in progress (its turn may have started at a pause and be
        held), or None between utterances."""
        return self._turn_id if self._endpointer.speaking else None

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, AudioChunk)
        partial = self._finished_partial()
        if partial is not None:
            for out in self._heard([partial]):
                yield out
        audio = np.concatenate([self._pending, self._to_engine_rate(frame)])
        self._consumed += len(audio) - len(self._pending)
        win = self._vad.window_samples
        n = len(audio) // win
        self._pending = audio[n * win :]
        if n == 0:
            self._listened = self._consumed - len(self._pending)
            return
        whole = audio[: n * win]
        probs = await self._vad_thread.call(self._vad.probabilities, whole)
        for i, p in enumerate(probs):
            gone = self._onset_gone()  # (after the event of the window that ended it)
            if gone is not None:
                yield gone
            event = self._endpointer.feed(whole[i * win : (i + 1) * win], p)
            if self._endpointer.onset and not self._onset:
                self._onset = True
                yield SpeechOnset(turn_id=0, voiced=True)
            if isinstance(event, Started):
                for turn_id in list(self._let_out):  # (decided by now; never left waiting)
                    self._decide(turn_id, False)
                self._turn_id = self._next_turn_id()
                self._early, self._hold_ms = False, None
                self._pause_text = None
                self._partial_at = 0
                self._texts = []
                yield SpeechStarted(
                    turn_id=self._turn_id,
                    audio_start_s=event.start_sample / self._vad.sample_rate_hz,
                )
            elif isinstance(event, Paused):
                config = self._endpointer.config
                sounds = self._sounds_at_pause(event)
                try:
                    text = await self._transcript_until(event.end_sample, event.audio)
                except Exception as e:  # tried again at the end of the turn
                    sounds.cancel()
                    log.warning("speech-to-text failed at a pause: %s", first_line(e))
                    continue
                self._pause_text = text
                if self._turn is not None and prepares_answer(text, config):
                    # the answer is prepared now: the voice decides only when it is let
                    # out, so the LLM does not wait for the end-of-turn model
                    self._early, self._hold_ms = True, config.unsure_end_ms  # until it answers
                    started = self._start_turn(text, event.end_sample, frame.at_s, tentative=True)
                    for out in self._heard(started):
                        yield out
                try:
                    done = await sounds
                finally:
                    sounds.cancel()
                reads = None  # the words are read where the voice leaves doubt
                if self._words is not None and reads_needed(text, done, config):
                    what = "the model of the words"
                    reads = await self._verdict(self._words.probability, text, what)
                self._hold_ms, end_ms = when_to_answer(text, done, config, reads)
                if self._hold_ms is not None and not frame.hears_over_speaker:
                    # the answer would mute the person if they went on (the first answer on
                    # open speakers, as a rule): in doubt it waits for the end of the turn,
                    # and for at least the settings' end-of-turn silence (no model's)
                    early = self._hold_ms < end_ms
                    end_ms = max(end_ms, config.end_silence_ms)
                    self._hold_ms = max(self._hold_ms, config.end_silence_ms) if early else end_ms
                self._endpointer.end_after(end_ms)
                if self._hold_ms is not None and not self._early:
                    self._early = True
                    started = self._start_turn(text, event.end_sample, frame.at_s, tentative=True)
                    for out in self._heard(started):
                        yield out
                elif self._hold_ms is None and text:
                    partial = UserText(turn_id=self._turn_id, text=text, final=False)
                    for out in self._heard([partial]):
                        yield out
            elif (
                event is None
                and self._hold_ms is not None
                and self._endpointer.silent_ms >= self._hold_ms
            ):
                self._decide(self._turn_id, True)
                yield TurnConfirmed(turn_id=self._turn_id)
                self._hold_ms = None
            elif isinstance(event, Resumed):
                self._pause_text = None
                if self._early:
                    self._decide(self._turn_id, False)
                    yield TurnRetracted(turn_id=self._turn_id)
                    self._turn_id = self._next_turn_id()
                    self._early, self._hold_ms = False, None
            elif isinstance(event, Ended):
                if self._early:
                    if self._hold_ms is not None:  # held to the end of turn: it stands
                        self._decide(self._turn_id, True)
                        yield TurnConfirmed(turn_id=self._turn_id)
                    self._early, self._hold_ms = False, None
                    continue
                final = self._pause_text
                try:
                    if final is None:
                        final = await self._transcript_until(event.end_sample, event.audio)
                except Exception as e:  # this utterance is lost; listening goes on
                    log.warning("speech-to-text failed", exc_info=e)
                    yield self._turn_started(event.end_sample, frame.at_s)
                    failed = TurnFailed(
                        turn_id=self._turn_id,
                        message=f"speech-to-text failed: {first_line(e)}",
                        stage="stt",
                    )
                    for out in self._heard([failed]):
                        yield out
                    continue
                for out in self._heard(self._start_turn(final, event.end_sample, frame.at_s)):
                    yield out
        gone = self._onset_gone()
        if gone is not None:
            yield gone
        self._listened = self._consumed - len(self._pending)
        self._maybe_transcribe()

    def _onset_gone(self) -> SpeechOnset | None:
        """The end of voiced windows told as an onset: they started (or resumed) speech, or
        were too short to."""
        if not self._onset or self._endpointer.onset:
            return None
        self._onset = False
        return SpeechOnset(turn_id=0, voiced=False)

    def _maybe_transcribe(self) -> None:
        """Start a background transcription: at the first silence after speech (eager), or
        every ``partial_every_ms`` of speech (partial). A partial starts only while the
        person is voicing and no other transcription runs: on 2 cores, a partial begun in
        the silence that ends a turn ran next to the eager transcription of the same words
        and made the final transcript ~100 ms later (290-365 ms instead of 150-250)."""
        ep = self._endpointer
        if not ep.speaking or self._early:
            return
        jobs = [j for j in self._jobs() if j.turn_id == self._turn_id]
        if any(j.task.done() and not j.used for j in jobs):
            return  # shown first
        if not ep.words_after(max((j.end for j in jobs), default=0)):
            return  # nothing said since the last transcript
        if ep.silent_ms >= self._eager_ms:
            # one begun at an earlier silence, still running, missed the words since
            busy = [j is not None and not j.task.done() for j in (self._eager, self._partial)]
            if not all(busy):
                thread = self._partial_thread if busy[0] else self._stt_thread
                self._eager = self._start(thread, eager=True)
                self._partial_at = ep.utterance_samples  # it is the next partial too
        elif (
            ep.silent_ms == 0  # in a silence the eager one is coming: not both at once
            and ep.utterance_samples - self._partial_at >= self._partial_every
            and all(j.task.done() for j in jobs)
        ):
            self._partial_at = ep.utterance_samples
            self._partial = self._start(self._partial_thread, eager=False)

    async def _kept(self, work: Awaitable[str], end: int) -> str:
        """``work``'s transcript (of the utterance up to ``end``), also kept in
        :attr:`_texts` while its utterance lasts."""
        texts = self._texts
        text = (await work).strip()
        if text:
            texts.append((end, text))
            texts.sort()
        return text

    def _start(self, thread: EngineThread, *, eager: bool) -> _Transcript:
        """Transcribe the utterance so far on ``thread``, in the background, from the words
        the last two transcripts of it agree on (kept as they were; see
        :meth:`WhisperEngine._transcribe_short`)."""
        audio = self._endpointer.utterance()
        texts = [text for _, text in self._texts[-2:]]
        prefix = agreed_words(*texts, unsure=2) if len(texts) == 2 else ""
        work = thread.call(self._stt.transcribe, audio, prefix)
        end = self._endpointer.position
        sounds = None
        if eager and self._turn is not None:
            verdict = self._sounds_done(self._endpointer.as_paused())
            sounds = self._background.spawn(verdict, self._turn_id)
        return _Transcript(
            task=self._background.spawn(self._kept(work, end), self._turn_id),
            turn_id=self._turn_id,
            end=end,
            eager=eager,
            sounds=sounds,
        )
