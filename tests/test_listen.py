"""The listening stage's end-of-turn logic (fakes), and early turns on real recorded speech."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from voicegrok.adapters.console import ConsoleView
from voicegrok.adapters.virtual import VirtualSpeaker, paced_chunks
from voicegrok.assistant import Assistant, Engines
from voicegrok.audio import load_audio
from voicegrok.config import Settings
from voicegrok.endpointing import EndpointConfig
from voicegrok.frames import (
    AudioChunk,
    Frame,
    Heard,
    SpeechOnset,
    SpeechStarted,
    TurnConfirmed,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from voicegrok.live import LiveSession
from voicegrok.pipeline import Pipeline
from voicegrok.stages.listen import ListenStage
from voicegrok.testing import FakeChat, FakeSTT, FakeVAD, fake_engines
from voicegrok.text import looks_complete
from voicegrok.threads import EngineThread

from .conftest import DEMO, engines_with_vad, words
from .test_vad import voiced_span

RATE = 16000
CHUNK = 320  # 20 ms, like the microphone adapter


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("What is the capital of France?", True),
        ("Put it in a table.", True),
        ("Okay!", True),
        ("I'd like to visit New York City and.", False),
        ("Can you make me a plan for the", False),
        ("So I was thinking, um.", False),
        ("Let me think...", False),
        ("", False),
        ("Book a table for two", False),
    ],
)
def test_looks_complete(text: str, complete: bool) -> None:
    assert looks_complete(text) is complete


def tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


async def listen(
    stage: ListenStage,
    audio: np.ndarray,
    rate: int = RATE,
    pace: float = 0.0,
    *,
    heard: bool = False,
    onsets: bool = False,
    hears_over_speaker: bool = True,
) -> list[tuple[float, Frame]]:
    """Feed ``audio`` in 20 ms chunks (``pace``: seconds of wall time per chunk); each output
    frame with the stream time it came at (``heard``: with the ``Heard`` frames, the
    control lane's copy of each transcript; ``onsets``: with the ``SpeechOnset`` frames)."""
    out: list[tuple[float, Frame]] = []
    step = rate * CHUNK // RATE
    for i in range(0, len(audio), step):
        chunk = AudioChunk(
            turn_id=0,
            samples=audio[i : i + step],
            sample_rate_hz=rate,
            hears_over_speaker=hears_over_speaker,
        )
        async for frame in stage.process(chunk):
            if (heard or not isinstance(frame, Heard)) and (
                onsets or not isinstance(frame, SpeechOnset)
            ):
                out.append(((i + step) / rate, frame))
        if pace:
            await asyncio.sleep(pace)
    return out


def make_stage(stt: FakeSTT, **kw: Any) -> ListenStage:
    ids = itertools.count(1)
    config = EndpointConfig(end_silence_ms=480, pause_ms=160)
    return ListenStage(FakeVAD(), stt, lambda: next(ids), config, **kw)


def kinds(frames: list[tuple[float, Frame]]) -> list[str]:
    return [type(f).__name__ for _, f in frames]


async def test_a_voiced_window_is_told_at_once_and_its_end_after_what_it_started() -> None:
    stage = make_stage(FakeSTT(["What time is it?"]), partial_every_ms=10_000)
    window = 512 / RATE  # one VAD window of tone, on a window's edge: too short for speech
    audio = np.concatenate([silence(16 * window), tone(window), silence(0.2)])
    blip = await listen(stage, audio, onsets=True)
    assert [f for _, f in blip] == [
        SpeechOnset(turn_id=0, voiced=True),
        SpeechOnset(turn_id=0, voiced=False),
    ]
    assert blip[0][0] - 17 * window < 0.021  # in the chunk that completed the window
    frames = await listen(stage, np.concatenate([tone(1.0), silence(1.0)]), onsets=True)
    assert kinds(frames)[:3] == ["SpeechOnset", "SpeechStarted", "SpeechOnset"]
    assert [f.voiced for _, f in frames if isinstance(f, SpeechOnset)] == [True, False]
    assert frames[1][0] - frames[0][0] < 0.041  # speech started a window later


@pytest.mark.parametrize(
    ("words", "confirm_s"),
    [("What time is it?", 0.32), ("Put it in a table.", 0.38)],
)
async def test_finished_sentence_starts_the_turn_at_the_pause(words: str, confirm_s: float) -> None:
    """A question is let out sooner than a statement (often followed by the request)."""
    stt = FakeSTT([words])
    frames = await listen(
        make_stage(stt, partial_every_ms=10_000),
        np.concatenate([silence(0.5), tone(1.5), silence(1.0)]),
    )
    assert kinds(frames) == ["SpeechStarted", "TurnStarted", "UserText", "TurnConfirmed"]
    started_at, confirmed_at = frames[1][0], frames[3][0]
    assert started_at - 2.0 <= 0.16 + 0.1, "the turn starts after the short pause"
    assert confirm_s <= confirmed_at - 2.0 <= confirm_s + 0.1, "and is let out a little later"
    text = frames[2][1]
    assert isinstance(text, UserText) and text.final and text.text == words
    assert len(stt.heard) == 1, "the pause's transcript is the final one"


async def test_a_microphone_deaf_over_the_speaker_lets_the_answer_out_at_the_end_of_turn() -> None:
    """While the echo canceller mutes the microphone whenever the speaker plays (not yet
    converged), an answer let out at the pause would make the rest of the person's words
    unheard: it is prepared there as ever, and let out at the end-of-turn silence."""
    stt = FakeSTT(["I'd like to visit New York City for two days."])
    frames = await listen(
        make_stage(stt, partial_every_ms=10_000),
        np.concatenate([tone(1.5), silence(1.0)]),
        hears_over_speaker=False,
    )
    assert kinds(frames) == ["SpeechStarted", "TurnStarted", "UserText", "TurnConfirmed"]
    started_at, confirmed_at = frames[1][0], frames[3][0]
    assert started_at - 1.5 <= 0.16 + 0.1, "prepared at the pause"
    assert 1.5 + 0.48 <= confirmed_at <= 1.5 + 0.48 + 0.1, "released at the end of turn"


@pytest.mark.parametrize("hears_over_speaker", [True, False], ids=["converged", "converging"])
async def test_the_live_loop_tells_the_listener_whether_the_person_is_heard_over_the_speaker(
    hears_over_speaker: bool,
) -> None:
    """Through the live loop, from the devices' side (``LiveSession(hears_over_speaker=)``,
    the echo canceller's): a statement, a 420 ms pause, then more words. With the
    microphone open over the speaker, the statement is let out after 380 ms and withdrawn
    when the person goes on; while it would be muted, nothing is let out before the end."""
    stt = FakeSTT(
        by_length=[(1.7, "I'd like to visit New York."), (9, "I'd like to visit New York today.")]
    )
    engines = fake_engines(stt=stt, llm=FakeChat(["Sure."]))
    engines.vad = FakeVAD()
    config = EndpointConfig(end_silence_ms=480, pause_ms=160)
    seen: list[Frame] = []
    audio = np.concatenate([tone(1.0), silence(0.42), tone(0.6), silence(1.0)])
    async with Assistant(engines, Settings(), endpointing=config) as assistant:
        session = LiveSession(
            assistant,
            VirtualSpeaker(16000),
            view=seen.append,
            hears_over_speaker=lambda: hears_over_speaker,
        )
        await session.run(paced_chunks(audio, RATE), RATE)
        await asyncio.sleep(0.3)
    answered = [f.turn_id for f in seen if isinstance(f, TurnStarted)]
    retracted = [f.turn_id for f in seen if isinstance(f, TurnRetracted)]
    if hears_over_speaker:  # the statement let out, and withdrawn
        assert answered == [1, 2] and retracted == [1], seen
    else:
        assert answered == [2] and retracted == [], seen
    said = [f.text for f in seen if isinstance(f, UserText) and f.final]
    assert said[-1] == "I'd like to visit New York today.", said


async def test_unfinished_words_start_a_tentative_turn_confirmed_at_the_end_silence() -> None:
    stt = FakeSTT(["I would like to visit the"])
    frames = await listen(
        make_stage(stt, partial_every_ms=10_000), np.concatenate([tone(1.5), silence(1.0)])
    )
    # no partial of the same words before the turn: the LLM would spend time on it (it
    # prefills partials) just before the turn it is answering
    assert kinds(frames) == ["SpeechStarted", "TurnStarted", "UserText", "TurnConfirmed"]
    (started_at, turn), (_, final), (confirmed_at, _) = frames[1:]
    assert isinstance(turn, TurnStarted) and turn.tentative
    assert started_at - 1.5 <= 0.16 + 0.1, "prepared at the pause"
    assert 1.5 + 0.48 <= confirmed_at <= 1.5 + 0.48 + 0.1, "released at the end of turn"
    assert isinstance(final, UserText) and final.final
    assert len(stt.heard) == 1, "the audio after the pause is silence: not decoded again"


async def test_without_speculation_unfinished_words_wait_for_the_end_of_turn() -> None:
    stt = FakeSTT(["I would like to visit the"])
    config = EndpointConfig(end_silence_ms=480, pause_ms=160, speculate=False)
    stage = ListenStage(
        FakeVAD(), stt, itertools.count(1).__next__, config, partial_every_ms=10_000
    )
    frames = await listen(stage, np.concatenate([tone(1.5), silence(1.0)]))
    assert kinds(frames) == ["SpeechStarted", "UserText", "TurnStarted", "UserText"]
    partial, (at, turn), final = frames[1][1], frames[2], frames[3][1]
    assert isinstance(partial, UserText) and not partial.final
    assert 1.5 + 0.48 <= at <= 1.5 + 0.48 + 0.1
    assert isinstance(turn, TurnStarted) and not turn.tentative
    assert isinstance(final, UserText) and final.final
    # the end of speech is the last voiced sample, not when the turn was decided
    assert turn.speech_end_s < frames[2][1].at_s
    assert len(stt.heard) == 1, "the audio after the pause is silence: not decoded again"


async def test_a_tentative_turn_is_heard_only_once_confirmed() -> None:
    """Through the live loop: an answer held at a pause is never seen when the person goes
    on (and leaves no history); the next one comes out whole at the end-of-turn silence."""
    stt = FakeSTT(
        by_length=[(1.6, "I would like to visit the"), (9, "I would like to visit the zoo and")]
    )
    engines = fake_engines(stt=stt, llm=FakeChat(["Which zoo?"]))
    engines.vad = FakeVAD()
    config = EndpointConfig(end_silence_ms=480, pause_ms=160)
    seen: list[tuple[float, Frame]] = []
    fed = 0
    async with Assistant(engines, Settings(), endpointing=config) as assistant:
        session = LiveSession(
            assistant, VirtualSpeaker(16000), view=lambda f: seen.append((fed / RATE, f))
        )

        async def read() -> None:
            async for frame in assistant.frames():
                await session.handle(frame)

        reader = asyncio.create_task(read())
        # speech, a 300 ms pause (a tentative turn, withdrawn), speech, the end of the turn
        audio = np.concatenate([tone(1.0), silence(0.3), tone(0.8), silence(1.0)])
        for fed in range(CHUNK, len(audio) + 1, CHUNK):
            await assistant.hear(audio[fed - CHUNK : fed], RATE)
            await asyncio.sleep(0.002)
        await asyncio.sleep(0.2)
        reader.cancel()
        turns = assistant.conversation.turns
    frames = [f for _, f in seen]
    started = [(at, f) for at, f in seen if isinstance(f, TurnStarted)]
    assert len(started) == 1 and started[0][0] >= 2.1 + 0.48, "released at the end of turn"
    assert not any(isinstance(f, (TurnRetracted, TurnConfirmed)) for f in frames)
    finals = [f.text for f in frames if isinstance(f, UserText) and f.final]
    assert finals == ["I would like to visit the zoo and"]
    assert any(isinstance(f, TurnMetrics) for f in frames)
    assert [t["content"] for t in turns] == ["I would like to visit the zoo and", "Which zoo?"]


async def test_going_on_after_an_early_turn_withdraws_it() -> None:
    stt = FakeSTT(["Book a table.", "Book a table for two at eight."])
    audio = np.concatenate([tone(1.0), silence(0.3), tone(0.8), silence(1.0)])
    frames = await listen(make_stage(stt, partial_every_ms=10_000), audio)
    assert kinds(frames) == [
        "SpeechStarted",
        "TurnStarted",
        "UserText",
        "TurnRetracted",
        "TurnStarted",
        "UserText",
        "TurnConfirmed",
    ]
    first, retracted, second = frames[1][1], frames[3][1], frames[4][1]
    assert isinstance(retracted, TurnRetracted) and retracted.turn_id == first.turn_id
    assert second.turn_id != first.turn_id
    final = frames[5][1]
    assert isinstance(final, UserText) and final.text == "Book a table for two at eight."
    # the second transcript covers the whole utterance, both parts
    assert stt.heard[-1] >= (1.0 + 0.3 + 0.8) * RATE


async def test_speech_to_text_starts_at_the_first_silence_not_after_the_pause() -> None:
    """The transcript is made while the pause is being measured: by the time it is known
    to be a pause, the words are (mostly) decoded already, and no second decode is made."""
    gate = threading.Event()
    stt = FakeSTT(["What time is it?"], gate=gate)
    stage = make_stage(stt, partial_every_ms=10_000)
    speech = np.concatenate([silence(0.5), tone(1.5)])
    frames = await listen(stage, np.concatenate([speech, silence(0.1)]))
    for _ in range(200):  # the engine thread picks the job up
        if stt.started:
            break
        await asyncio.sleep(0.005)
    assert stt.started == 1, "100 ms of silence: the utterance is being transcribed"
    assert kinds(frames) == ["SpeechStarted"], "but the turn is not decided yet"
    gate.set()
    frames += await listen(stage, silence(1.0))
    assert kinds(frames) == ["SpeechStarted", "TurnStarted", "UserText", "TurnConfirmed"]
    final = frames[2][1]
    assert isinstance(final, UserText) and final.final and final.text == "What time is it?"
    assert stt.started == 1, "the transcript begun at the silence is the final one"


def _two_threads(stt: FakeSTT, *, partial_every_ms: int) -> ListenStage:
    """A stage whose partials have a thread of their own, as in the live loop."""
    stt_thread, partial_thread = EngineThread("stt"), EngineThread("partial")
    return make_stage(
        stt, stt_thread=stt_thread, partial_thread=partial_thread, partial_every_ms=partial_every_ms
    )


async def test_a_partial_still_running_does_not_delay_the_end_of_the_turn() -> None:
    """The partial begun just before the person stopped takes long; the transcript that
    ends the turn runs beside it, on its own thread, and the turn starts at the pause."""
    stt = FakeSTT(["What time is it?"], delays=[1.5])
    stage = _two_threads(stt, partial_every_ms=1400)
    t0 = time.perf_counter()
    frames = await listen(stage, np.concatenate([tone(1.5), silence(0.5)]), pace=0.02)
    turn = next(f for _, f in frames if isinstance(f, TurnStarted))
    assert stt.started == 2 and stt.heard[0] >= 1.5 * RATE, "the end's transcript came first"
    # the partial (of 1.4 s of speech) ends at 1.4 + 1.5 s; the pause is at 1.5 + 0.16 s
    assert turn.at_s - t0 < 2.6, "the turn did not wait for the slow partial"


async def test_words_after_a_short_silence_are_transcribed_beside_its_slow_transcript() -> None:
    """A silence inside the sentence starts a transcription that is slow to finish; the
    person goes on, then stops. The words since are transcribed at once, on the partials'
    thread, not after the stale transcription at the pause (on the rig, a question in
    espeak-ng's en-us+m3 had its end's transcript begin 0-40 ms after the pause instead of
    130 ms before it, and it came 190-260 ms after the pause)."""
    said = [(1.3, "What is the"), (99.0, "What is the time?")]
    stt = FakeSTT(delays=[1.0, 0.05], by_length=said)
    stage = _two_threads(stt, partial_every_ms=10_000)
    t0 = time.perf_counter()
    audio = np.concatenate([tone(1.0), silence(0.1), tone(0.5), silence(1.0)])
    frames = await listen(stage, audio, pace=0.02)
    turn = next(f for _, f in frames if isinstance(f, TurnStarted))
    text = next(f for _, f in frames if isinstance(f, UserText) and f.final)
    assert text.text == "What is the time?" and max(stt.heard) >= 1.6 * RATE
    # the stale one ends at ~2.05 s; the pause after the second part is at ~1.8 s
    assert turn.at_s - t0 < 1.98, turn.at_s - t0


async def test_a_breath_between_words_shows_the_transcript_made_during_it() -> None:
    stt = FakeSTT(["Tell me", "Tell me about the moon."], delay_s=0.01)
    audio = np.concatenate([tone(1.0), silence(0.12), tone(1.0), silence(1.0)])
    frames = await listen(make_stage(stt, partial_every_ms=10_000), audio, pace=0.002)
    texts = [(f.text, f.final) for _, f in frames if isinstance(f, UserText)]
    assert texts == [("Tell me", False), ("Tell me about the moon.", True)]
    assert stt.heard[-1] >= 2.1 * RATE, "the final transcript covers both parts"


async def test_listening_goes_on_after_speech_to_text_fails() -> None:
    """A transcription that raises loses that utterance (the person is told), not the
    microphone: the next question is heard and answered."""
    stt = FakeSTT(["Hello there."], errors=3)  # the early, the pause and the end decodes
    stage = make_stage(stt, partial_every_ms=10_000)
    frames = await listen(stage, np.concatenate([tone(1.0), silence(1.0)]))
    assert kinds(frames) == ["SpeechStarted", "TurnStarted", "TurnFailed"]
    failed = frames[-1][1]
    assert isinstance(failed, TurnFailed) and "speech-to-text failed" in failed.message
    assert failed.turn_id == frames[1][1].turn_id
    frames = await listen(stage, np.concatenate([tone(1.0), silence(1.0)]))
    assert kinds(frames) == ["SpeechStarted", "TurnStarted", "UserText", "TurnConfirmed"]


async def test_a_stage_that_fails_on_microphone_audio_does_not_stop_listening() -> None:
    """An error on a chunk of the microphone stream (turn 0) is reported, and later chunks
    still flow (they were dropped as a cancelled turn, so the assistant went deaf)."""

    class Flaky:
        accepts = (AudioChunk,)
        inline = False
        passes_while_busy = ()
        calls = 0

        async def process(self, frame: Frame) -> AsyncIterator[Frame]:
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise RuntimeError("bad chunk")
            yield frame

    pipeline = Pipeline([Flaky()])
    pipeline.start()
    out = pipeline.frames()
    try:
        for _ in range(2):
            await pipeline.push(AudioChunk(turn_id=0, samples=silence(0.02), sample_rate_hz=RATE))
        first = await asyncio.wait_for(anext(out), 5)
        second = await asyncio.wait_for(anext(out), 5)
    finally:
        await pipeline.abort()
    assert isinstance(first, TurnFailed) and "bad chunk" in first.message
    assert isinstance(second, AudioChunk)


async def test_partial_transcripts_while_speaking() -> None:
    stt = FakeSTT(["Tell me", "Tell me about the", "Tell me about the moon."], delay_s=0.01)
    stage = make_stage(stt, partial_every_ms=500)
    frames = await listen(stage, np.concatenate([tone(2.2), silence(1.0)]), pace=0.005)
    partials = [f for _, f in frames if isinstance(f, UserText) and not f.final]
    finals = [f for _, f in frames if isinstance(f, UserText) and f.final]
    assert [p.text for p in partials][:2] == ["Tell me", "Tell me about the"]
    assert all(p.turn_id == finals[0].turn_id for p in partials)
    assert finals[0].text == "Tell me about the moon."


async def test_the_final_transcript_begins_from_the_words_partials_agreed_on() -> None:
    """Two partial transcripts in a row agree on how the utterance begins: the next
    transcription (the one that ends the turn) is given those words, and decodes only the
    rest. A new utterance starts from nothing."""
    stt = FakeSTT(["Tell me", "Tell me about the", "Tell me about the moon."], delay_s=0.01)
    stage = make_stage(stt, partial_every_ms=500)
    await listen(stage, np.concatenate([tone(2.2), silence(1.0)]), pace=0.005)
    assert stt.prefixes[:2] == ["", ""]
    assert stt.prefixes[2] == "Tell me"  # what "Tell me" and "Tell me about the" agree on
    # "Tell me about the" and "Tell me about the moon." (the last two words may be a word
    # cut off, as whisper hears it: left out)
    assert stt.prefixes[3] == "Tell me about"
    said = len(stt.prefixes)
    await listen(stage, np.concatenate([tone(0.5), silence(1.0)]), pace=0.005)
    assert stt.prefixes[said] == ""


async def test_noise_that_says_nothing_fails_the_turn_quietly() -> None:
    frames = await listen(make_stage(FakeSTT([""])), np.concatenate([tone(0.5), silence(1.0)]))
    assert kinds(frames) == ["SpeechStarted", "TurnFailed"]
    assert isinstance(frames[1][1], TurnFailed)


async def test_any_microphone_rate_is_resampled() -> None:
    stt = FakeSTT(["Hello there."])
    audio48 = np.repeat(np.concatenate([silence(0.3), tone(1.0), silence(1.0)]), 3)
    frames = await listen(make_stage(stt), audio48, rate=48000)
    assert isinstance(frames[0][1], SpeechStarted)
    assert "TurnStarted" in kinds(frames)
    assert abs(stt.heard[-1] / RATE - (1.0 + 0.3 + 0.15)) < 0.2  # pre-roll + speech + tail


@pytest.mark.parametrize("turn_model", [False, True], ids=["pause-and-words", "smart-turn"])
async def test_going_on_after_a_question_merges_it_with_the_rest(
    engines: Engines, turn_model: bool
) -> None:
    """Real speech, real models, real-time pace: a finished question, a 300 ms pause and
    more words. The answer prepared for the first part at the pause is withdrawn, and is
    forgotten; the history holds one question with both parts.

    Without the end-of-turn model it is let out only after 320 ms of silence, so it is not
    even shown, and nothing is played before the person has finished speaking. With it, a
    question in a voice that sounds finished is let out after 250 ms: the person going on
    at 300 ms withdraws it ("you went on"; its first word may be shown by then: the
    transcript of the first part is ready at the pause). On a fast machine its first sound
    comes at about 300 ms too, before the voice going on has been heard (two 32 ms windows
    of it): then it stops there, a syllable at most."""
    first = load_audio(DEMO / "turn2.wav")  # "Can you put this itinerary in a table?"
    rest = load_audio(DEMO / "turn3.wav")  # "Please add a column with the approximate cost..."
    _, end_first = voiced_span(first)
    start_rest, end_rest = voiced_span(rest)
    audio = np.concatenate(
        [first[: int(end_first * RATE)], silence(0.3), rest[int(start_rest * RATE) :], silence(2)]
    )
    settings = Settings(max_tokens=60)
    out = io.StringIO()
    listening = engines_with_vad(engines)
    if not turn_model:
        listening = dataclasses.replace(listening, turn=None)
    first_sound: list[float] = []

    class Speaker(VirtualSpeaker):
        def play(self, pcm: bytes) -> None:
            first_sound.append(time.perf_counter())
            super().play(pcm)

    speech_s = end_first + 0.3 + end_rest - start_rest  # the last word's end
    async with Assistant(listening, settings) as assistant:
        speaker = Speaker(22050)
        session = LiveSession(assistant, speaker, ConsoleView(out))
        t0 = time.perf_counter()
        run = asyncio.create_task(session.run(paced_chunks(audio, RATE), RATE))
        played_by_end: float | None = None  # seconds of sound before the person finished
        for _ in range(600):
            if session.turns_done:
                break
            if played_by_end is None and time.perf_counter() - t0 >= speech_s:
                played_by_end = speaker.played_bytes / 2 / speaker.sample_rate_hz
            await asyncio.sleep(0.05)
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        turns = assistant.conversation.turns
    shown = out.getvalue()
    assert first_sound, shown
    assert played_by_end is not None, shown
    if turn_model:
        assert played_by_end <= 0.2, (played_by_end, shown)
        assert shown.count("voicegrok: ") == 1 or "went on" in shown, shown
    else:
        assert first_sound[0] - t0 >= speech_s, shown  # the first answer said nothing
        assert "went on" not in shown and shown.count("you: ") == 1, shown
    assert [t["role"] for t in turns] == ["user", "assistant"], turns
    said = words(turns[0]["content"])
    assert "table" in said and "column" in said


async def test_each_transcript_is_also_heard_on_the_control_lane() -> None:
    """Every partial and final transcript, and a turn with no words, comes first as a
    ``Heard`` (control lane: it is not held up behind an LLM writing an earlier answer)."""
    stt = FakeSTT(["what about", "What about Atlanta?"], by_length=[(1.2, "what about")])
    frames = await listen(
        make_stage(stt, partial_every_ms=700),
        np.concatenate([silence(0.3), tone(1.6), silence(1.0)]),
        heard=True,
    )
    texts = [f for _, f in frames if isinstance(f, UserText)]
    assert texts
    for i, (_, f) in enumerate(frames):
        if isinstance(f, UserText):
            before = frames[i - 1][1]
            assert isinstance(before, Heard) and before.text == f.text and before.final == f.final
    stage = make_stage(FakeSTT([""]))
    frames = await listen(stage, np.concatenate([tone(0.5), silence(1.0)]), heard=True)
    assert any(isinstance(f, Heard) and f.text == "" and f.final for _, f in frames)


async def test_what_is_heard_tells_how_long_the_speech_lasted() -> None:
    """Each ``Heard`` carries how long the speech has been voiced so far: a short sound
    over an answer is judged by it (a filler made out as words)."""
    for seconds in (0.5, 1.6):
        stt = FakeSTT(["what about", "What about Atlanta?"])
        frames = await listen(
            make_stage(stt),
            np.concatenate([silence(0.3), tone(seconds), silence(1.0)]),
            heard=True,
        )
        final = [f for _, f in frames if isinstance(f, Heard) and f.final]
        assert final and final[-1].voiced_ms is not None
        # within the VAD's windows of the tone's length
        assert abs(final[-1].voiced_ms - seconds * 1000) <= 100, (seconds, final[-1])


async def test_no_partial_starts_in_the_silence_that_ends_a_turn() -> None:
    """A partial falling due just after the person stopped would run beside the transcript
    that ends the turn (the same words twice, on the same cores): only that one is made."""
    stt = FakeSTT(["What time is it?"], delay_s=0.01)
    stage = make_stage(stt, partial_every_ms=1400)  # due 40 ms into the silence
    frames = await listen(stage, np.concatenate([tone(1.36), silence(1.0)]), pace=0.002)
    assert stt.started == 1, stt.heard
    assert [f.text for _, f in frames if isinstance(f, UserText)] == ["What time is it?"]


async def test_a_transcript_begun_as_the_words_ended_is_the_final_one() -> None:
    """The VAD still calls a window or two voiced after the words end (Silero's probability
    falls slowly): a partial begun there holds every word, and no second decode of the
    same words is made at the silence (on 2 cores the two ran side by side and the turn
    started ~200 ms later)."""
    stt = FakeSTT(["What time is it?"], delay_s=0.01)
    ids = itertools.count(1)
    config = EndpointConfig(end_silence_ms=480, pause_ms=160)
    stage = ListenStage(FakeVAD(level=0.001), stt, lambda: next(ids), config, partial_every_ms=1400)
    hum = 0.003 * np.sqrt(2) * np.sin(2 * np.pi * 50 * np.arange(int(0.12 * RATE)) / RATE)
    audio = np.concatenate([tone(1.4), hum.astype(np.float32), silence(1.0)])
    frames = await listen(stage, audio, pace=0.002)
    assert stt.started == 1, stt.heard
    assert stt.heard[0] >= 1.4 * RATE, "the partial holds every word"
    finals = [f.text for _, f in frames if isinstance(f, UserText) and f.final]
    assert finals == ["What time is it?"]


async def test_words_after_the_last_transcript_are_transcribed_again() -> None:
    """A soft word after the partial's end (20 dB below the loudest, not 30) is words."""
    stt = FakeSTT(["What time", "What time is it?"], delay_s=0.01)
    ids = itertools.count(1)
    config = EndpointConfig(end_silence_ms=480, pause_ms=160)
    stage = ListenStage(FakeVAD(level=0.001), stt, lambda: next(ids), config, partial_every_ms=1400)
    soft = tone(0.12) / 10
    audio = np.concatenate([tone(1.4), soft, silence(1.0)])
    frames = await listen(stage, audio, pace=0.002)
    assert stt.started == 2, stt.heard
    assert [f.text for _, f in frames if isinstance(f, UserText)][-1] == "What time is it?"


@pytest.mark.parametrize("goes_on", [True, False], ids=["went-on", "let-out"])
async def test_a_tool_that_acts_waits_for_the_turn_to_be_let_out(goes_on: bool) -> None:
    """A timer asked for, a 300 ms pause: the answer is prepared there, but the timer is set
    only once the turn is let out. When the person goes on, the request prepared at the
    pause sets nothing: one timer, for the whole request."""
    from voicegrok.tools.timers import Timers

    stt = FakeSTT(
        by_length=[
            (1.7, "Set a timer for ten minutes."),
            (9, "Set a timer for ten minutes for the tea."),
        ]
    )
    engines = fake_engines(stt=stt)
    engines.vad = FakeVAD()
    config = EndpointConfig(end_silence_ms=480, pause_ms=160)
    timers = Timers()
    seen: list[Frame] = []
    audio = [tone(1.0), silence(0.3)] + ([tone(0.6)] if goes_on else []) + [silence(1.0)]
    async with Assistant(engines, Settings(), endpointing=config, timers=timers) as assistant:
        session = LiveSession(assistant, VirtualSpeaker(16000), view=seen.append)
        set_before_let_out: list[int] = []

        async def watch() -> None:  # timers set while the turn is still held at the pause
            while True:
                if not any(isinstance(f, TurnStarted) for f in seen):
                    set_before_let_out.append(len(timers.pending()))
                await asyncio.sleep(0.01)

        watcher = asyncio.create_task(watch())
        await session.run(paced_chunks(np.concatenate(audio), RATE), RATE)
        await asyncio.sleep(0.3)
        watcher.cancel()
    assert max(set_before_let_out) == 0, "nothing is done for an answer not let out"
    pending = timers.pending()
    assert len(pending) == 1, pending
    assert [f.turn_id for f in seen if isinstance(f, TurnStarted)] == ([2] if goes_on else [1])
