"""Speech over an answer pauses it; its words decide whether it stops (a false
interruption resumes it). The controller's logic, then the live loop with real models."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator

import numpy as np
import pytest

from voicegrok.adapters.console import ConsoleView
from voicegrok.adapters.virtual import VirtualSpeaker, paced_chunks
from voicegrok.assistant import Assistant, Engines
from voicegrok.audio import load_audio
from voicegrok.config import Settings
from voicegrok.frames import (
    Heard,
    Interrupt,
    LLMToken,
    SpeechOnset,
    SpeechStarted,
    SpokenClause,
    TTSAudio,
    TurnFailed,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from voicegrok.live import LiveSession
from voicegrok.text import is_aside
from voicegrok.turns import (
    EditHistory,
    EndTurn,
    Forget,
    KeepHeard,
    PausePlayback,
    ResumePlayback,
    Show,
    StopPlayback,
    TurnController,
)

from .conftest import DEMO, engines_with_vad
from .test_vad import voiced_span

RATE = 16000


@pytest.mark.parametrize(
    ("heard", "aside"),
    [
        ("", True),
        ("Mm-hmm.", True),
        ("Okay.", True),
        ("Yeah, right.", True),
        ("Thank you.", True),
        ("the museum", True),  # its own words, heard back from the speaker
        ("two", True),  # "2", heard back
        ("t", True),  # a sound made out as a letter
        ("street.", True),  # a word made of its own echo, asking for nothing
        ("Hey!", False),
        ("What?", False),
        ("for", True),  # "4", heard back (as in "2 + 2 = 4")
        ("Right, the museum.", True),  # "write", heard back
        ("No.", False),  # meant, though the answer has "know"
        ("Stop.", False),
        ("Wait.", False),
        ("Okay, stop.", False),
        ("What is two plus two?", False),
        ("Wait, stop. What is 2 plus 2?", False),
    ],
)
def test_what_is_an_aside(heard: str, aside: bool) -> None:
    answer = (
        "Start at the museum, then walk along the river, 2 hours, or 4. Write it down, you know."
    )
    assert is_aside(heard, answer) is aside


@pytest.mark.parametrize(
    ("heard", "voiced_ms", "aside"),
    [
        # a filler said over the answer's echo, made out as words by whisper
        ("I'm Adam.", 600, True),
        ("And then then...", 650, True),
        ("and m-m-m", 640, True),
        ("I'm Adam.", None, False),  # how long it lasted not known: the words decide
        ("I'm Adam.", 900, False),  # too long for a sound of listening
        ("And we have them.", 620, True),  # more words than 0.6 s can hold: made of noise
        ("Tell me more about it.", 1100, False),
        ("Stop it.", 400, False),  # short, but asks
        ("Shut up.", 400, False),
        ("Why not?", 400, False),  # a question
        ("Have you ever been?", 550, True),  # a "Mm-hmm." made out as a question
        ("Have you ever been?", 900, False),
        ("Wait, have you been?", 550, False),
        ("Is it far?", 550, False),
    ],
)
def test_short_speech_that_asks_for_nothing_is_an_aside(
    heard: str, voiced_ms: float | None, aside: bool
) -> None:
    assert is_aside(heard, "Start at the museum, then walk along the river.", voiced_ms) is aside


def answering() -> TurnController:
    """An answer of three clauses of a second each, one and a half played."""
    ctl = TurnController(confirm_interruptions=True)
    ctl.feed(TurnStarted(turn_id=1, speech_end_s=0.0))
    for i, text in enumerate(["One,", "two,", "three."]):
        ctl.feed(LLMToken(turn_id=1, text=text + " ", index=i))
        ctl.feed(SpokenClause(turn_id=1, index=i, text=text, spoken=text))
        ctl.feed(TTSAudio(turn_id=1, pcm=b"\0\0" * 100, sample_rate_hz=100, clause_index=i))
        ctl.queued(1, i, float(i), float(i + 1), first_play_s=0.5)
    ctl.played(1.5)
    return ctl


def test_speech_over_an_answer_pauses_it_and_an_aside_resumes_it() -> None:
    ctl = answering()
    out = ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert PausePlayback(1) in out and not any(isinstance(d, StopPlayback) for d in out)
    assert ctl.feed(TurnStarted(turn_id=2, speech_end_s=1.0)) == []  # held until its words
    out = ctl.feed(Heard(turn_id=2, text="Mm-hmm.", final=True))
    assert out == [EndTurn(2, ""), EditHistory(2, Forget()), ResumePlayback(1)]
    assert ctl.feed(UserText(turn_id=2, text="Mm-hmm.")) == []  # its text, come late
    assert ctl.current is not None and ctl.current.turn_id == 1 and ctl.interruptions == 0
    # the aside's turn never was: whatever comes of it is dropped
    assert ctl.feed(LLMToken(turn_id=2, text="Sure", index=0)) == []
    assert ctl.feed(LLMToken(turn_id=1, text=" more", index=3))  # the answer goes on


def test_speech_that_says_nothing_resumes_the_answer() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    out = ctl.feed(Heard(turn_id=2, text="", final=True))
    assert ResumePlayback(1) in out and ctl.interruptions == 0
    assert ctl.feed(TurnFailed(turn_id=2, message="no words were heard", stage="stt")) == []


def test_words_meant_for_it_stop_the_answer_and_become_the_next_turn() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    ctl.feed(TurnStarted(turn_id=2, speech_end_s=1.0))
    out = ctl.feed(Heard(turn_id=2, text="Wait, what about Atlanta?", final=True))
    out += ctl.feed(UserText(turn_id=2, text="Wait, what about Atlanta?"))
    assert out[:3] == [
        StopPlayback(1),
        EndTurn(1, "interrupted"),
        EditHistory(1, KeepHeard("One,", 1.5)),
    ]
    assert ctl.interruptions == 1
    shown = [type(d.frame).__name__ for d in out if isinstance(d, Show)]
    assert shown == ["Interrupt", "TurnStarted", "UserText"]  # in the order they happened
    assert ctl.feed(Interrupt(turn_id=1)) == []  # the pipeline's own, shown already
    assert ctl.current is not None and ctl.current.turn_id == 2
    assert ctl.feed(LLMToken(turn_id=2, text="Atlanta", index=0))  # the new turn is answered


def test_a_partial_transcript_with_real_words_stops_it_before_the_speech_ends() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert ctl.feed(Heard(turn_id=2, text="Okay", final=False)) == []  # no verdict yet
    out = ctl.feed(Heard(turn_id=2, text="Okay, stop, I want", final=False))
    assert StopPlayback(1) in out and ctl.interruptions == 1


def test_a_short_partial_waits_for_the_end_of_the_speech() -> None:
    """Words made of a filler ("mm-hmm" heard over the echo as "and then") stop nothing:
    they wait for the speech to end, and it was short; the same words in longer speech,
    still going on, stop the answer."""
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert ctl.feed(Heard(turn_id=2, text="And then", final=False, voiced_ms=450)) == []
    out = ctl.feed(Heard(turn_id=2, text="And then then...", final=True, voiced_ms=620))
    assert ResumePlayback(1) in out and ctl.interruptions == 0
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert ctl.feed(Heard(turn_id=2, text="And then", final=False, voiced_ms=450)) == []
    out = ctl.feed(Heard(turn_id=2, text="And then what", final=False, voiced_ms=1100))
    assert StopPlayback(1) in out and ctl.interruptions == 1


def test_the_words_decide_even_while_the_llm_is_still_writing_the_paused_answer() -> None:
    """The speech's transcript (UserText) waits behind the LLM stage writing the paused
    answer; its Heard, on the control lane, does not: a cough resumes the answer at once."""
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    out = ctl.feed(Heard(turn_id=2, text="", final=True))  # before any TurnStarted of it
    assert ResumePlayback(1) in out
    assert ctl.feed(LLMToken(turn_id=1, text=" four.", index=9))  # the answer goes on
    assert ctl.feed(TurnFailed(turn_id=2, message="no words were heard", stage="stt")) == []


def test_an_utterance_that_goes_on_after_a_pause_is_judged_by_its_last_words() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    ctl.feed(TurnStarted(turn_id=2, speech_end_s=1.0, tentative=True))
    ctl.feed(TurnRetracted(turn_id=2))  # the person went on: the listener's next id
    out = ctl.feed(Heard(turn_id=3, text="Okay.", final=True))
    assert ResumePlayback(1) in out


def test_going_on_after_an_aside_pauses_the_answer_again() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    ctl.feed(TurnStarted(turn_id=2, speech_end_s=1.0, tentative=True))
    assert ResumePlayback(1) in ctl.feed(Heard(turn_id=2, text="Okay.", final=True))
    assert ctl.feed(TurnRetracted(turn_id=2)) == [PausePlayback(1)]  # "okay... so, what"
    ctl.feed(TurnStarted(turn_id=3, speech_end_s=2.0))
    out = ctl.feed(Heard(turn_id=3, text="Okay, so what about Atlanta?", final=True))
    assert StopPlayback(1) in out and ctl.interruptions == 1


def test_words_that_go_on_after_an_aside_under_a_newer_id_stop_the_answer() -> None:
    """Seen on open speakers: "Wait" came out as "." (an aside, the answer resumed), and
    the utterance went on under the listener's next id with no retraction of the first
    (it had started no turn). Its words must still stop the answer, at once: its turn
    waits behind the LLM writing the paused answer, and then it was queued after it."""
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert ResumePlayback(1) in ctl.feed(Heard(turn_id=2, text=".", final=True))
    out = ctl.feed(Heard(turn_id=3, text="Right, stop.", final=True))
    assert StopPlayback(1) in out and ctl.interruptions == 1
    out = ctl.feed(TurnStarted(turn_id=4, speech_end_s=2.0))
    assert ctl.current is not None and ctl.current.turn_id == 4


def test_an_aside_heard_under_a_newer_id_lets_the_answer_play_on() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    ctl.feed(Heard(turn_id=2, text=".", final=True))
    assert ctl.feed(Heard(turn_id=3, text="Okay", final=False)) == []  # no pause for it
    out = ctl.feed(Heard(turn_id=3, text="Okay.", final=True))
    assert not any(isinstance(d, (StopPlayback, PausePlayback)) for d in out)
    assert ctl.feed(TurnStarted(turn_id=3, speech_end_s=2.0)) == []  # its turn never was
    assert ctl.current is not None and ctl.current.turn_id == 1 and ctl.interruptions == 0


def test_late_words_of_an_older_speech_leave_the_pause_to_the_newer_one() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=3, audio_start_s=0.0))
    assert ctl.feed(Heard(turn_id=2, text="Okay.", final=True)) == []
    assert ResumePlayback(1) in ctl.feed(Heard(turn_id=3, text="Okay.", final=True))


def test_a_spoken_turn_whose_speech_stopped_nothing_stops_the_answer_when_it_starts() -> None:
    ctl = answering()
    out = ctl.feed(TurnStarted(turn_id=2, speech_end_s=2.0))  # its speech went unseen
    assert StopPlayback(1) in out and ctl.interruptions == 1
    assert ctl.current is not None and ctl.current.turn_id == 2


def test_escape_while_paused_stops_it_and_nothing_resumes_it() -> None:
    ctl = answering()
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert StopPlayback(1) in ctl.interrupt()
    out = ctl.feed(Heard(turn_id=2, text="Okay.", final=True))
    assert not any(isinstance(d, ResumePlayback) for d in out)


def test_without_confirmation_speech_stops_the_answer_at_once() -> None:
    ctl = TurnController()  # a server: its client plays, and is told to stop at once
    ctl.feed(TurnStarted(turn_id=1, speech_end_s=0.0))
    ctl.feed(TTSAudio(turn_id=1, pcm=b"\0\0" * 100, sample_rate_hz=100, clause_index=0))
    ctl.queued(1, 0, 0.0, 1.0, first_play_s=0.1)
    out = ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert StopPlayback(1) in out


def test_a_voiced_window_pauses_the_answer_at_once_and_a_blip_lets_it_play_on() -> None:
    ctl = answering()
    assert ctl.feed(SpeechOnset(turn_id=0, voiced=True)) == [PausePlayback(1)]
    assert ctl.feed(SpeechOnset(turn_id=0, voiced=False)) == [ResumePlayback(1)]
    assert ctl.interruptions == 0 and ctl.current is not None and ctl.current.turn_id == 1


def test_speech_that_starts_from_an_onset_keeps_the_answer_paused_until_its_words() -> None:
    ctl = answering()
    assert ctl.feed(SpeechOnset(turn_id=0, voiced=True)) == [PausePlayback(1)]
    ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert ctl.feed(SpeechOnset(turn_id=0, voiced=False)) == []  # still paused: words decide
    out = ctl.feed(Heard(turn_id=2, text="Mm-hmm.", final=True))
    assert ResumePlayback(1) in out
    out = ctl.feed(SpeechOnset(turn_id=0, voiced=True))  # again, over the answer resumed
    assert out == [PausePlayback(1)]


def test_an_onset_pauses_nothing_when_nothing_plays_or_the_client_plays() -> None:
    ctl = answering()
    ctl.played(3.0)  # all heard
    assert ctl.feed(SpeechOnset(turn_id=0, voiced=True)) == []
    assert ctl.feed(SpeechOnset(turn_id=0, voiced=False)) == []
    server = TurnController()  # a server: no local playback to pause
    server.feed(TurnStarted(turn_id=1, speech_end_s=0.0))
    server.feed(TTSAudio(turn_id=1, pcm=b"\0\0" * 100, sample_rate_hz=100, clause_index=0))
    assert server.feed(SpeechOnset(turn_id=0, voiced=True)) == []


def test_a_paused_virtual_speaker_keeps_its_audio_and_plays_it_later() -> None:
    speaker = VirtualSpeaker(1000)
    speaker.play(b"\1\0" * 1000)  # a second
    speaker.pause()
    played = speaker.played_bytes
    asyncio.run(asyncio.sleep(0.2))
    assert speaker.played_bytes == played and speaker.buffered_s > 0.9
    speaker.resume()
    asyncio.run(asyncio.sleep(0.2))
    assert speaker.played_bytes > played
    speaker.pause()
    speaker.clear()  # an interruption confirmed: what was paused goes, the pause with it
    played = speaker.played_bytes
    speaker.play(b"\1\0" * 1000)  # the next answer plays
    asyncio.run(asyncio.sleep(0.2))
    assert speaker.played_bytes > played


async def test_a_listener_saying_okay_over_the_answer_does_not_stop_it(engines: Engines) -> None:
    """Real models, real speech at real-time pace: a question, then, a second into its
    spoken answer, "okay" said over it. The answer pauses, then plays on to its end; no
    second turn is answered and nothing was interrupted."""
    from voicegrok import models
    from voicegrok.bench.turn_set import Turn, Voices, render

    question = load_audio(DEMO / "turn1.wav")
    _, end = voiced_span(question)
    said = render(Turn("finished", "Okay."), "piper", Voices(models.resolve("tts")))
    okay = said.audio[int(0.3 * RATE) : said.speech_end + RATE // 10]
    out = io.StringIO()
    async with Assistant(engines_with_vad(engines), Settings(max_tokens=120)) as assistant:
        speaker = VirtualSpeaker(22050)
        session = LiveSession(assistant, speaker, ConsoleView(out))
        over_it_at: list[int] = []

        async def microphone() -> AsyncIterator[np.ndarray]:
            async for chunk in paced_chunks(question[: int((end + 0.1) * RATE)], RATE):
                yield chunk
            for _ in range(1500):  # silence until a second of the answer has been heard
                if speaker.played_bytes > 22050 * 2:
                    break
                yield np.zeros(320, dtype=np.float32)
                await asyncio.sleep(0.02)
            over_it_at.append(speaker.played_bytes)
            async for chunk in paced_chunks(okay, RATE):
                yield chunk
            async for chunk in paced_chunks(np.zeros(RATE * 4, dtype=np.float32), RATE):
                yield chunk

        await session.run(microphone(), RATE)
        turns = assistant.conversation.turns
    shown = out.getvalue()
    assert over_it_at and over_it_at[0] > 0, shown
    assert session.interruptions == 0, shown
    assert speaker.played_bytes > over_it_at[0] + 22050 * 2, shown  # it played on after
    assert [t["role"] for t in turns] == ["user", "assistant"], turns
