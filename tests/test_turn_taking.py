"""End of turn with the end-of-turn model (Smart Turn): the policy, the engine, the
turn-taking set and its bench. Behaviour only; the figures come from ``bench turns``."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from voicegrok import models
from voicegrok.audio import load_audio
from voicegrok.bench.turn_set import RATE, Turn, Voices, load_set, render
from voicegrok.bench.turns import judge
from voicegrok.endpointing import (
    Ended,
    EndpointConfig,
    Endpointer,
    Paused,
    Resumed,
    prepares_answer,
    reads_needed,
    when_to_answer,
)
from voicegrok.engines.smart_turn import SmartTurn
from voicegrok.engines.text_turn import TextTurn
from voicegrok.frames import AudioChunk, Frame, TurnConfirmed, TurnRetracted, TurnStarted, UserText
from voicegrok.testing import FakeSTT, FakeVAD
from voicegrok.text import goes_on
from voicegrok.threads import EngineThread

from .test_listen import listen, silence, tone

CONFIG = EndpointConfig()


# ------------------------------------------------------------------ the policy (pure logic)


def test_without_a_model_the_pause_and_the_words_decide_as_before() -> None:
    assert when_to_answer("What is it?", None, CONFIG) == (320, 480)
    assert when_to_answer("Tell me a joke.", None, CONFIG) == (380, 480)
    assert when_to_answer("tell me a", None, CONFIG) == (480, 480)
    assert when_to_answer("And now...", None, CONFIG) == (None, 480)


def test_finished_words_in_a_voice_that_sounds_finished_are_answered_at_once() -> None:
    assert when_to_answer("What is the capital of France?", 0.95, CONFIG) == (250, 800)


def test_finished_words_in_a_voice_that_does_not_sound_finished_wait_in_doubt() -> None:
    # "I'd like to book." said as "I'd like to book... a table for two"
    assert when_to_answer("I'd like to book.", 0.3, CONFIG) == (800, 800)
    assert when_to_answer("I'd like to book.", 0.79, CONFIG) == (800, 800)


def test_finished_words_in_a_voice_in_doubt_are_answered_soon_when_they_read_as_finished() -> None:
    """The model of the words is heard where the voice does not sound finished (under 0.8)
    and the words look finished; words that read as a finished request are then let out
    after ``read_confirm_ms``, other words wait in doubt as before. Where the voice sounds
    unfinished (under 0.5), the words must read more clearly finished."""
    question = "What is the capital of France?"
    assert reads_needed(question, 0.6, CONFIG)
    assert when_to_answer(question, 0.6, CONFIG, 0.45) == (CONFIG.read_confirm_ms, 800)
    assert when_to_answer(question, 0.6, CONFIG, 0.1) == (800, 800)
    assert when_to_answer(question, 0.6, CONFIG) == (800, 800)  # no model of the words
    assert reads_needed(question, 0.3, CONFIG)
    # against the voice, the turn ends when the answer is let out (later speech is a new
    # turn: an interruption, which its words confirm, not the person going on)
    read = CONFIG.read_confirm_ms
    assert when_to_answer(question, 0.3, CONFIG, 0.7) == (read, read)
    assert when_to_answer(question, 0.3, CONFIG, 0.45) == (800, 800)  # the voice is heeded
    # a voice that sounds finished needs no reading
    assert not reads_needed(question, 0.95, CONFIG)
    assert when_to_answer(question, 0.95, CONFIG, 0.1) == when_to_answer(question, 0.95, CONFIG)
    # words that do not look finished are never let out sooner for reading well
    for words in ("Remind me to call my mother", "So...", "What about"):
        assert not reads_needed(words, 0.6, CONFIG)
        assert when_to_answer(words, 0.6, CONFIG, 0.9) == when_to_answer(words, 0.6, CONFIG)
    assert not reads_needed(question, None, CONFIG)  # (no end-of-turn model)


def test_words_that_go_on_wait_longest_however_finished_the_voice_sounds() -> None:
    for words in (
        "So.",
        "Um",
        "And then the.",
        "What about...",
        "I was wondering if-",
        "My favorite city is",
        "Could you put it in",
    ):
        assert goes_on(words), words
        _hold, end = when_to_answer(words, 0.97, CONFIG)
        assert end == CONFIG.unfinished_end_ms, words
    assert when_to_answer("Um", 0.97, CONFIG)[0] == 1500  # prepared, held
    assert when_to_answer("What about...", 0.97, CONFIG)[0] is None  # trailing: not prepared
    assert when_to_answer("", 0.97, CONFIG) == (None, 1500)


def test_a_last_word_that_seldom_ends_a_sentence_goes_on_only_without_punctuation() -> None:
    assert goes_on("My favorite city is")
    assert not goes_on("Do you know where it is?")
    assert not goes_on("Tell me what it is.")
    assert not goes_on("Remind me to call my mother")


def test_unfinished_words_in_an_unfinished_voice_wait_longest() -> None:
    assert when_to_answer("Remind me to call my mother", 0.2, CONFIG) == (1500, 1500)
    assert when_to_answer("Remind me to call my mother", 0.6, CONFIG) == (800, 800)


@pytest.mark.parametrize("speculate", [True, False])
@pytest.mark.parametrize(
    "text",
    ["What time is it?", "Put it in a table.", "I'd like to book", "So, um...", "and", ""],
)
def test_an_answer_prepared_before_the_model_answers_is_one_it_would_prepare(
    text: str, speculate: bool
) -> None:
    """The listener starts the answer when ``prepares_answer`` says so, before the model
    has answered: whatever the model then says, ``when_to_answer`` gives it a hold."""
    config = EndpointConfig(speculate=speculate)
    if prepares_answer(text, config):
        assert all(when_to_answer(text, p, config)[0] is not None for p in (0, 0.3, 0.85, 1))
    else:  # only the model can have it prepared: finished words in a finished voice
        assert when_to_answer(text, 0.3, config)[0] is None


def test_a_longer_end_of_turn_lasts_until_the_person_speaks_again() -> None:
    ep = Endpointer(EndpointConfig(end_silence_ms=480, pause_ms=160))
    voice, quiet = np.full(512, 0.1, np.float32), np.zeros(512, np.float32)

    def feed(p: float, n: int) -> list[object]:
        return [e for _ in range(n) if (e := ep.feed(voice if p else quiet, p)) is not None]

    feed(1.0, 10)
    assert any(isinstance(e, Paused) for e in feed(0.0, 6))
    ep.end_after(1500)
    assert not any(isinstance(e, Ended) for e in feed(0.0, 30))  # ~1.1 s: still going
    assert any(isinstance(e, Resumed) for e in feed(1.0, 3))  # back to 480 ms from here
    events = feed(0.0, 16)
    assert any(isinstance(e, Ended) for e in events)


# ------------------------------------------------------------------ the listening stage


class ScriptedTurn:
    """An end-of-turn model that says what it is told."""

    sample_rate_hz = RATE

    def __init__(self, probability: float) -> None:
        self.p = probability
        self.heard: list[int] = []

    def probability(self, audio: Any) -> float:
        self.heard.append(len(audio))
        return self.p


class ScriptedWords:
    """A model of the words that says what it is told."""

    def __init__(self, probability: float) -> None:
        self.p = probability
        self.read: list[str] = []

    def probability(self, text: str) -> float:
        self.read.append(text)
        return self.p


async def _released_after(
    words: str,
    p: float,
    gap_s: float,
    *,
    hears_over_speaker: bool = True,
    reader: ScriptedWords | None = None,
) -> tuple[list[str], float | None]:
    """Speech, ``gap_s`` of silence, more speech: which frames come, and when the answer
    was let out (seconds after the first speech ended)."""
    from voicegrok.stages.listen import ListenStage

    model = ScriptedTurn(p)
    ids = iter(range(1, 100))
    stage = ListenStage(FakeVAD(), FakeSTT([words]), lambda: next(ids), turn=model, words=reader)
    audio = np.concatenate([silence(0.3), tone(1.0), silence(gap_s), tone(0.6), silence(2.0)])
    frames = await listen(stage, audio, hears_over_speaker=hears_over_speaker)
    assert model.heard, "the model was asked at the pause"
    kinds = [type(f).__name__ for _, f in frames]
    released = [
        at
        for at, f in frames
        if isinstance(f, TurnConfirmed) or (isinstance(f, TurnStarted) and not f.tentative)
    ]
    return kinds, (released[0] - 1.3) if released else None


async def test_a_finished_sounding_turn_is_let_out_after_a_short_silence() -> None:
    kinds, released = await _released_after("Put it in a table.", 0.95, gap_s=1.2)
    assert released is not None and 0.15 <= released <= 0.35, released
    assert "TurnRetracted" not in kinds
    assert kinds.count("SpeechStarted") == 2  # the turn had ended: the tone is a new one


@pytest.mark.parametrize(
    ("p", "reads", "after_s"),
    [
        (0.6, 0.7, CONFIG.read_confirm_ms / 1000),
        (0.6, 0.1, CONFIG.unsure_end_ms / 1000),
        (0.1, 0.7, CONFIG.read_confirm_ms / 1000),  # voice unfinished, words clearly finished
        (0.1, 0.45, CONFIG.unsure_end_ms / 1000),
    ],
)
async def test_a_question_in_a_voice_in_doubt_is_let_out_soon_when_its_words_read_finished(
    p: float, reads: float, after_s: float
) -> None:
    reader = ScriptedWords(reads)
    kinds, released = await _released_after(
        "What is the capital of France?", p, gap_s=1.2, reader=reader
    )
    # read once at each pause (the tone after the turn is an utterance of its own)
    assert reader.read == ["What is the capital of France?"] * kinds.count("SpeechStarted")
    assert released is not None and after_s <= released <= after_s + 0.1, released
    assert "TurnRetracted" not in kinds


@pytest.mark.parametrize(("hears", "after_s"), [(True, 0.32), (False, 0.48)])
async def test_words_read_as_finished_against_the_voice_end_the_turn_when_let_out(
    hears: bool, after_s: float
) -> None:
    """A question Smart Turn hears as unfinished (0.1) but whose words read clearly
    finished is let out after ``read_confirm_ms``, and the turn ends there: the speech
    0.6 s later (before the 800 ms of doubt) is a new utterance, never the person going
    on, so the answer's own echo cannot withdraw it. With a microphone deaf over the
    speaker, both wait the settings' end-of-turn silence."""
    reader = ScriptedWords(0.7)
    kinds, released = await _released_after(
        "What is the capital of France?", 0.1, 0.6, reader=reader, hears_over_speaker=hears
    )
    assert released is not None and after_s <= released <= after_s + 0.1, released
    assert "TurnRetracted" not in kinds
    assert kinds.count("SpeechStarted") == 2


async def test_the_words_are_not_read_where_the_voice_decides() -> None:
    reader = ScriptedWords(0.9)
    _kinds, released = await _released_after("Put it in a table.", 0.95, 1.2, reader=reader)
    assert reader.read == []
    assert released is not None and released <= 0.35, released
    _kinds, released = await _released_after("I'd like to book", 0.1, 1.2, reader=reader)
    assert reader.read == []
    assert released is not None and released > 1.2, released


@pytest.mark.parametrize(
    ("p", "after_s"), [(0.95, CONFIG.end_silence_ms / 1000), (0.6, CONFIG.unsure_end_ms / 1000)]
)
async def test_a_microphone_deaf_over_the_speaker_waits_the_end_of_turn_silence(
    p: float, after_s: float
) -> None:
    """An echo canceller not yet converged mutes the microphone while the speaker plays,
    so the answer waits until the turn has ended: after the settings' end-of-turn silence
    when words and voice sound finished, after the model's longer one in doubt."""
    kinds, released = await _released_after(
        "Put it in a table.", p, gap_s=1.2, hears_over_speaker=False
    )
    assert released is not None and after_s <= released <= after_s + 0.1, released
    assert "TurnRetracted" not in kinds


async def test_an_unfinished_sounding_turn_is_held_through_a_long_pause() -> None:
    kinds, released = await _released_after("I'd like to book", 0.1, gap_s=1.2)
    assert "TurnRetracted" in kinds  # prepared, then withdrawn unheard when speech came back
    assert released is not None and released > 1.2, released  # only after the second part


async def test_a_failing_model_leaves_the_pause_and_the_words_to_decide() -> None:
    from voicegrok.stages.listen import ListenStage

    class Broken(ScriptedTurn):
        def probability(self, audio: Any) -> float:
            raise RuntimeError("onnx went away")

    ids = iter(range(1, 100))
    stage = ListenStage(FakeVAD(), FakeSTT(["What time is it?"]), lambda: next(ids), turn=Broken(0))
    frames = await listen(stage, np.concatenate([silence(0.3), tone(1.0), silence(1.5)]))
    assert any(isinstance(f, TurnConfirmed) for _, f in frames)
    assert not any(isinstance(f, TurnRetracted) for _, f in frames)


async def test_the_answer_is_prepared_while_the_end_of_turn_model_still_listens() -> None:
    """The words alone decide whether an answer is prepared at a pause; the model only
    decides when it is let out. So the turn starts as soon as the transcript is there,
    and the LLM does not wait for the model (on 2 cores it often finished after whisper)."""
    from voicegrok.stages.listen import ListenStage

    class Slow(ScriptedTurn):
        def __init__(self, probability: float) -> None:
            super().__init__(probability)
            self.gate = threading.Event()

        def probability(self, audio: Any) -> float:
            self.gate.wait(2.0)
            return super().probability(audio)

    model = Slow(0.95)
    ids = iter(range(1, 100))
    stage = ListenStage(FakeVAD(), FakeSTT(["What time is it?"]), lambda: next(ids), turn=model)
    audio = np.concatenate([silence(0.3), tone(1.0), silence(1.5)])
    heard_before: list[int] = []
    frames: list[Frame] = []
    for i in range(0, len(audio), 320):
        chunk = AudioChunk(turn_id=0, samples=audio[i : i + 320], sample_rate_hz=RATE)
        async for frame in stage.process(chunk):
            frames.append(frame)
            if isinstance(frame, UserText) and frame.final:
                heard_before.append(len(model.heard))
                model.gate.set()
    assert heard_before == [0], "the final transcript came before the model's answer"
    assert model.heard, "the model was still asked"
    started = [f for f in frames if isinstance(f, TurnStarted)]
    assert len(started) == 1 and started[0].tentative
    assert any(isinstance(f, TurnConfirmed) for f in frames), "and it let the answer out"


# ------------------------------------------------------------------ real models


@pytest.fixture(scope="module")
def voices() -> Voices:
    return Voices(models.resolve("tts"))


@pytest.fixture(scope="module")
def smart_turn() -> SmartTurn:
    return SmartTurn(models.resolve("turn"))


def test_smart_turn_hears_a_finished_question_and_a_sentence_broken_off(
    voices: Voices, smart_turn: SmartTurn
) -> None:
    done = render(Turn("finished", "What is the capital of France?"), "piper", voices)
    assert smart_turn.probability(done.audio[: done.speech_end + 2400]) > 0.8
    # real speech, cut inside its sentence ("ask not what your country can do for you...")
    jfk = load_audio(Path(__file__).parent / "data" / "jfk.flac")
    for cut_s in (4.5, 6.0, 8.0, 9.5):
        assert smart_turn.probability(jfk[: int(cut_s * RATE)]) < 0.5, cut_s


@pytest.mark.models
def test_smollm2_reads_questions_as_finished_and_first_halves_as_not() -> None:
    """The embedded SmolLM2 as the model of the words: plain questions read as finished
    (over ``read_threshold``), the first halves of the turn-taking set's sentences with
    pauses do not, whisper's punctuation and all."""
    words = TextTurn(models.resolve("llm"))
    for done in (
        "What is the capital of France?",
        "How far is the moon from the earth?",
        "Can you recommend a good book about history?",
    ):
        assert words.probability(done) >= CONFIG.read_threshold, done
    for half in ("Can you tell me?", "I'd like to book.", "How long does it take?", "Tell me."):
        assert words.probability(half) < CONFIG.read_threshold, half
    assert words.probability("") == 0.0
    long = "and then " * 200 + "what is the capital of France?"
    assert 0.0 <= words.probability(long) <= 1.0  # its last words are read


def test_a_missing_or_broken_turn_model_is_one_line(tmp_path: Path) -> None:
    from voicegrok.errors import ModelError

    broken = tmp_path / "turn.onnx"
    broken.write_bytes(b"not onnx")
    with pytest.raises(ModelError, match=r"turn\.onnx: cannot load the end-of-turn model"):
        SmartTurn(broken)
    with pytest.raises(ModelError, match="no such file"):
        models.resolve("turn", str(tmp_path / "missing.onnx"))


def test_the_set_puts_each_pause_between_the_words_it_names(voices: Voices) -> None:
    from voicegrok.engines.whisper import WhisperEngine

    whisper = WhisperEngine(models.resolve("stt"))
    turn_set = load_set()
    assert {t.kind for t in turn_set.turns} == {"finished", "pause", "hesitation"}
    pauses = [t for t in turn_set.turns if t.pause_ms]
    assert all(300 <= ms <= 900 for t in pauses for ms in t.pause_ms)
    for turn in pauses[:4]:
        clip = render(turn, "piper", voices)
        (start, end), *_ = clip.pauses
        assert np.abs(clip.audio[start:end]).max() < 0.01  # silence there
        before = whisper.transcribe(clip.audio[: start + 3200]).lower()
        expected = turn.text.split("|")[0].strip().lower().replace("'", "")
        assert before.replace("'", "").rstrip(".?!, ").endswith(expected.split()[-1]), before


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_espeak_voices_say_the_set_too(voices: Voices) -> None:
    clip = render(
        Turn("pause", "Tell me about | the history of Rome.", (750,)), "espeak:en-gb+f3", voices
    )
    ((start, end),) = clip.pauses
    assert (end - start) == 750 * RATE // 1000
    assert clip.speech_end > end + RATE // 2  # the rest is said after it


@pytest.fixture(scope="module")
def listening_engines() -> Iterator[dict[str, Any]]:
    from voicegrok.engines.silero import SileroVAD
    from voicegrok.engines.whisper import WhisperEngine

    threads = {k: EngineThread(k) for k in ("vad", "stt", "turn")}
    yield {
        "vad": SileroVAD(models.resolve("vad")),
        "stt": WhisperEngine(models.resolve("stt")),
        "threads": threads,
    }
    for t in threads.values():
        t.close()


def test_the_new_policy_holds_a_pause_the_old_one_cut_off_and_answers_a_question_sooner(
    voices: Voices, smart_turn: SmartTurn, listening_engines: dict[str, Any]
) -> None:
    e = listening_engines
    paused = render(Turn("pause", "Tell me about | the history of Rome.", (750,)), "piper", voices)
    question = render(Turn("finished", "What is the capital of France?"), "piper", voices)

    def run(clip: Any, turn: SmartTurn | None) -> Any:
        return asyncio.run(judge(clip, e["vad"], e["stt"], turn, CONFIG, e["threads"]))

    old, new = run(paused, None), run(paused, smart_turn)
    assert old.cut_off and old.text == "Tell me about"
    assert not new.cut_off and new.released_ms is not None
    assert "history of Rome" in new.text
    old, new = run(question, None), run(question, smart_turn)
    assert not old.cut_off and not new.cut_off
    sooner = CONFIG.question_confirm_ms - CONFIG.done_confirm_ms  # 250 ms of silence, not 320
    window_ms = 1000 * e["vad"].window_samples / RATE  # silence is counted in VAD windows
    assert new.released_ms <= old.released_ms - sooner + window_ms, (new, old)


def test_bench_turns_reports_cut_offs_and_latency_per_policy(cli: Any, tmp_path: Path) -> None:
    small = tmp_path / "set.toml"
    small.write_text(
        'voices = ["piper"]\nper_turn = 1\n'
        '[[turn]]\nkind = "finished"\ntext = "Put it in a table."\n'
        '[[turn]]\nkind = "pause"\ntext = "Tell me about | the history of Rome."\n'
        "pause_ms = [700]\n",
        encoding="utf-8",
    )
    run = cli("bench", "turns", "--set", str(small), "-q", timeout=600)
    assert run.code == 0, run.err
    report = json.loads(run.out)
    assert report["clips"] == 2
    policies = report["policies"]
    assert {"smart-turn normal", "pause-and-words normal"} <= set(policies)
    for figures in policies.values():
        assert {"cut_off_pct", "latency_p50_ms", "latency_p90_ms", "by_kind", "by_voice"} <= set(
            figures
        )
        assert figures["turns"] == 2 and figures["never_released"] == 0
    assert policies["smart-turn patient"]["cut_off_pct"] == 0.0
    assert "smart-turn+words normal" in policies


async def test_the_end_of_turn_model_is_asked_next_to_the_eager_transcription() -> None:
    """The model hears the utterance at the first silent window, with the transcription
    made there (its tail to come padded with silence), not at the pause: at the pause it
    ran next to the LLM's first token and slowed it on 2 cores. It is asked once, and its
    verdict still lets the answer out."""
    from voicegrok.stages.listen import ListenStage

    fed = 0
    asked_at: list[int] = []

    class Timed(ScriptedTurn):
        def probability(self, audio: Any) -> float:
            asked_at.append(fed)
            return super().probability(audio)

    model = Timed(0.95)
    ids = iter(range(1, 100))
    stage = ListenStage(FakeVAD(), FakeSTT(["What time is it?"]), lambda: next(ids), turn=model)
    speech_end = int(1.3 * RATE)
    audio = np.concatenate([silence(0.3), tone(1.0), silence(1.5)])
    frames: list[Frame] = []
    for i in range(0, len(audio), 320):
        chunk = AudioChunk(turn_id=0, samples=audio[i : i + 320], sample_rate_hz=RATE)
        fed = i + 320
        async for frame in stage.process(chunk):
            frames.append(frame)
        await asyncio.sleep(0.005)  # the engine threads' turn
    assert len(asked_at) == 1, asked_at
    pause = EndpointConfig().pause_ms * RATE // 1000
    assert asked_at[0] - speech_end < pause, "asked only at the pause"
    tail = EndpointConfig().tail_ms * RATE // 1000
    assert model.heard[0] >= speech_end - int(0.3 * RATE) + tail, "the tail was padded"
    assert any(isinstance(f, TurnConfirmed) for f in frames)
