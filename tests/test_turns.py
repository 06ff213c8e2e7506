"""One owner for each turn: the TurnController (sans-I/O, no event loop), and the four
bugs of the turn's life it fixed, each driven through the product's real paths."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voicegrok.adapters.virtual import VirtualSpeaker, paced_chunks
from voicegrok.assistant import Assistant
from voicegrok.audio import float_to_pcm16, resample
from voicegrok.config import Settings
from voicegrok.conversation import Conversation
from voicegrok.frames import (
    LLMToken,
    SpeechStarted,
    SpokenClause,
    TTSAudio,
    TurnConfirmed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from voicegrok.live import LiveSession
from voicegrok.protocol import realtime as rt
from voicegrok.remote import RATE_HZ, RemoteAssistant
from voicegrok.server.app import RealtimeServer, ServerOptions
from voicegrok.server.session import RealtimeSession
from voicegrok.testing import FakeChat, FakeSTT, FakeTTS, FakeVAD, collect, fake_engines
from voicegrok.turns import (
    EditHistory,
    EndTurn,
    Forget,
    KeepHeard,
    Report,
    Show,
    StopPlayback,
    TurnController,
)

RATE = 16000


def tone(seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float, rate: int = RATE) -> np.ndarray:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def shown(decisions: list[Any]) -> list[str]:
    return [type(d.frame).__name__ for d in decisions if isinstance(d, Show)]


async def wait_for(condition: Callable[[], bool], timeout_s: float = 15) -> None:
    end = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < end, "timed out"
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------ the controller alone


def test_a_confirmation_that_overtakes_its_tentative_turn_releases_it_when_it_comes() -> None:
    ctl = TurnController()
    assert ctl.feed(TurnConfirmed(turn_id=3)) == []
    out = ctl.feed(TurnStarted(turn_id=3, speech_end_s=0.0, tentative=True))
    assert shown(out) == ["TurnStarted"]
    assert shown(ctl.feed(UserText(turn_id=3, text="What time is it?"))) == ["UserText"]


def test_a_retraction_that_overtakes_its_turn_stops_it_and_drops_it_when_it_comes() -> None:
    ctl = TurnController()
    out = ctl.feed(TurnRetracted(turn_id=4))
    assert out == [EndTurn(4, ""), EditHistory(4, Forget())]
    assert ctl.feed(TurnStarted(turn_id=4, speech_end_s=0.0, tentative=True)) == []
    assert ctl.feed(UserText(turn_id=4, text="Book a table.")) == []


def test_turns_withdrawn_before_they_started_are_not_remembered_for_ever() -> None:
    """A turn retracted before its TurnStarted came never starts (the runner drops it):
    once a newer turn starts, nothing is kept for it, and it is stale if it ever comes."""
    ctl = TurnController()
    for turn_id in range(1, 200, 2):
        ctl.feed(TurnRetracted(turn_id=turn_id))
        ctl.feed(TurnStarted(turn_id=turn_id + 1, speech_end_s=0.0))
    assert len(ctl._early) == 0 and len(ctl._ahead) == 0
    assert ctl.feed(TurnStarted(turn_id=5, speech_end_s=0.0)) == []


def test_a_held_turn_shows_nothing_until_confirmed_then_everything_in_order() -> None:
    ctl = TurnController()
    held = [
        TurnStarted(turn_id=1, speech_end_s=0.0, tentative=True),
        UserText(turn_id=1, text="Hi."),
        LLMToken(turn_id=1, text="Hello", index=0),
    ]
    assert [d for f in held for d in ctl.feed(f)] == []
    assert shown(ctl.feed(TurnConfirmed(turn_id=1))) == ["TurnStarted", "UserText", "LLMToken"]


def test_retracting_a_confirmed_turn_stops_playback_and_forgets_it() -> None:
    ctl = TurnController()
    ctl.feed(TurnStarted(turn_id=1, speech_end_s=0.0))
    ctl.feed(UserText(turn_id=1, text="Book a table."))
    out = ctl.feed(TurnRetracted(turn_id=1))
    assert out[:3] == [StopPlayback(1), EndTurn(1, ""), EditHistory(1, Forget())]
    assert shown(out) == ["TurnRetracted"]


def test_a_barge_in_keeps_the_clauses_played_and_reports_the_turn_interrupted() -> None:
    ctl = TurnController()
    ctl.feed(TurnStarted(turn_id=1, speech_end_s=0.0))
    for i, text in enumerate(["One,", "two,", "three."]):
        ctl.feed(SpokenClause(turn_id=1, index=i, text=text, spoken=text))
        ctl.feed(TTSAudio(turn_id=1, pcm=b"\0\0" * 100, sample_rate_hz=100, clause_index=i))
        ctl.queued(1, i, float(i), float(i + 1), first_play_s=0.5)
    ctl.played(2.5)  # "One," and "two," were heard, "three." was cut
    out = ctl.feed(SpeechStarted(turn_id=2, audio_start_s=0.0))
    assert out[1:4] == [
        StopPlayback(1),
        EndTurn(1, "interrupted"),
        EditHistory(1, KeepHeard("One, two,", 2.5)),
    ]
    (report,) = [d for d in out if isinstance(d, Report)]
    assert report.row["interrupted"] is True and report.row["first_audio_device_ms"] == 500.0
    assert ctl.interruptions == 1 and not ctl.answering


def test_a_held_turn_released_at_once_is_reported_with_the_time_its_audio_was_heard() -> None:
    """A confirmed turn's frames come out in one batch (audio and metrics together): its
    row waits for the owner to queue that audio and report playback, so it carries when
    the answer was first heard."""
    ctl = TurnController()
    ctl.feed(TurnStarted(turn_id=1, speech_end_s=10.0, tentative=True))
    ctl.feed(TTSAudio(turn_id=1, pcm=b"\0\0" * 100, sample_rate_hz=100, clause_index=0))
    ctl.feed(TurnMetrics.from_dict({"n_tokens": 3}, turn_id=1))
    batch = ctl.feed(TurnConfirmed(turn_id=1, at_s=10.32))  # 320 ms of silence confirmed it
    assert shown(batch) == ["TurnStarted", "TTSAudio", "TurnMetrics"]
    assert not any(isinstance(d, Report) for d in batch)
    ctl.queued(1, 0, 0.0, 1.0, first_play_s=10.4)  # the owner plays the batch's audio
    assert ctl.played(0.5) == []
    (report,) = ctl.played(1.0)
    assert isinstance(report, Report) and report.row["first_audio_device_ms"] == 400.0
    # when it was let out, and the end of speech on the clock a benchmark can read
    assert report.row["released_ms"] == 320.0 and report.row["speech_end_at_s"] == 10.0


def test_an_answer_is_reported_once_it_has_been_played_out() -> None:
    ctl = TurnController()
    ctl.feed(TurnStarted(turn_id=1, speech_end_s=0.0))
    ctl.queued(1, 0, 0.0, 2.0, first_play_s=0.3)
    metrics = TurnMetrics(
        turn_id=1,
        source="speech",
        stt_ms=1.0,
        llm_first_token_ms=2.0,
        tts_first_audio_ms=3.0,
        first_audio_ms=4.0,
        total_ms=5.0,
        tokens_per_s=6.0,
        n_tokens=7,
        clauses=1,
        audio_s=2.0,
    )
    assert shown(ctl.feed(metrics)) == ["TurnMetrics"]
    assert ctl.played(1.0) == [], "still playing"
    (report,) = ctl.played(2.0)
    assert isinstance(report, Report) and report.row["interrupted"] is False
    assert ctl.played(3.0) == [], "once"
    assert TurnMetrics.from_dict(metrics.as_dict(), turn_id=1) == metrics


# ------------------------------------------------------------------ bug 1: lanes


async def started_session(engines: Any) -> tuple[RealtimeSession, list[Any]]:
    """A server session with no socket: what it sends is collected in a list."""
    events: list[Any] = []

    async def send(event: Any) -> None:
        events.append(event)

    session = RealtimeSession(engines, Settings(), send)
    await session.start()
    return session, events


async def speak(session: RealtimeSession, audio16k: np.ndarray, pace: bool = False) -> None:
    """Append 16 kHz audio to a session as 24 kHz PCM, 20 ms a message."""
    pcm = float_to_pcm16(resample(audio16k, RATE, 24000))
    step = 960  # 20 ms at 24 kHz, 16-bit
    for i in range(0, len(pcm), step):
        await session.handle(rt.InputAudioBufferAppend(audio=pcm[i : i + step]))
        await asyncio.sleep(0.02 if pace else 0)


async def test_a_turn_confirmed_while_an_answer_is_still_being_spoken_is_answered() -> None:
    """Bug 1: with ``interrupt_response: false``, the person asks while the previous answer
    is still being synthesized. The tentative turn waits behind that answer in the TTS
    stage, its confirmation travels on the control lane and arrives first; it used to be
    dropped, and the turn was held forever (never answered)."""
    engines = fake_engines(
        stt=FakeSTT(["Where is Paris?"]),
        llm=FakeChat(["One. Two. Three. Four. Five. Six.", "In France."]),
        tts=FakeTTS(delay_s=0.3),
    )
    engines.vad = FakeVAD()
    session, events = await started_session(engines)
    try:
        td = rt.TurnDetection(interrupt_response=False)
        no_barge_in = rt.Session(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=td)))
        await session.handle(rt.SessionUpdate(session=no_barge_in))
        item = rt.Item(content=[rt.ContentPart(type="input_text", text="Count to six.")])
        await session.handle(rt.ConversationItemCreate(item=item))
        await session.handle(rt.ResponseCreate())
        await wait_for(lambda: any(isinstance(e, rt.AudioDelta) for e in events))
        await speak(session, np.concatenate([tone(1.0), silence(1.0)]))
        done = lambda: [e for e in events if isinstance(e, rt.ResponseDone)]  # noqa: E731
        await wait_for(lambda: len(done()) >= 2, timeout_s=20)
    finally:
        await session.close()
    assert [d.response.status for d in done()] == ["completed", "completed"]
    transcripts = [e.transcript for e in events if isinstance(e, rt.AudioTranscriptDone)]
    assert transcripts[-1] == "In France."


# ------------------------------------------------------------------ bug 2: server retraction


async def test_a_confirmed_turn_withdrawn_by_the_server_leaves_no_history() -> None:
    """Bug 2: "Book a table." is confirmed after its statement pause, then the person goes
    on. The server deletes both items; its history must forget them too (it used to keep
    the partial question and its answer)."""
    engines = fake_engines(
        stt=FakeSTT(by_length=[(1.6, "Book a table."), (9, "Book a table for two at eight.")]),
        llm=FakeChat(["Sure.", "Done: a table for two at eight."]),
    )
    engines.vad = FakeVAD()
    session, events = await started_session(engines)
    try:
        audio = np.concatenate([tone(1.0), silence(0.45), tone(0.8), silence(1.0)])
        await speak(session, audio, pace=True)
        await wait_for(
            lambda: sum(
                isinstance(e, rt.ResponseDone) and e.response.status == "completed"
                for e in events
            )
            >= 1
            and any(isinstance(e, rt.ItemDeleted) for e in events)
        )
        await asyncio.sleep(0.3)
    finally:
        await session.close()
    assert [(m["role"], m["content"]) for m in session.conversation.turns] == [
        ("user", "Book a table for two at eight."),
        ("assistant", "Done: a table for two at eight."),
    ]


# ------------------------------------------------------------------ bug 3: one owner thread


class _Watched(Conversation):
    """A history that notes the thread of every change."""

    threads: set[int]

    def _add(self, role: str, text: str, turn_id: int) -> None:
        self.threads.add(threading.get_ident())
        super()._add(role, text, turn_id)

    def keep_heard(self, turn_id: int, text: str) -> None:
        self.threads.add(threading.get_ident())
        super().keep_heard(turn_id, text)

    def forget_turn(self, turn_id: int) -> None:
        self.threads.add(threading.get_ident())
        super().forget_turn(turn_id)


async def test_the_history_is_changed_only_on_the_event_loop() -> None:
    """Bug 3: the question was added on the LLM thread while barge-ins and retractions
    edited the history on the event loop."""
    history = _Watched()
    history.threads = set()
    async with Assistant(fake_engines(llm=FakeChat(["Hello there."])), conversation=history) as a:
        await collect(a.ask("Hi"))
        turn = a.current_turn or 1
        await a.edit_history(turn, KeepHeard("Hello", None))
    assert history.threads == {threading.get_ident()}
    assert [m["content"] for m in history.turns] == ["Hi", "Hello"]


# ------------------------------------------------------------------ bug 4: connect


async def test_a_barge_in_over_connect_leaves_only_what_was_heard_in_the_servers_history() -> (
    None
):
    """Bug 4: ``voicegrok connect`` cancelled an answer spoken over but never said how much
    of it was played (``conversation.item.truncate``): the server kept it all."""
    answer = "One, two, three, four, five, six, seven, eight, nine, ten."
    engines = fake_engines(
        stt=FakeSTT(["Count to ten.", "Stop."]),
        llm=FakeChat([answer, "Stopped."]),
        tts=FakeTTS(samples_per_char=1600),  # a clause like "One," lasts 0.4 s
    )
    engines.vad = FakeVAD()
    mic = np.concatenate([tone(1.0), silence(2.2), tone(0.6), silence(3.0)])
    async with (
        RealtimeServer(engines, Settings(), ServerOptions(port=0)) as server,
        RemoteAssistant(f"ws://127.0.0.1:{server.port}") as remote,
    ):
        speaker = VirtualSpeaker(RATE_HZ)
        session = LiveSession(remote, speaker)
        run = asyncio.create_task(session.run(paced_chunks(mic, RATE), RATE))
        try:
            await wait_for(lambda: session.interruptions >= 1, timeout_s=20)
            (served,) = server.sessions
            history = served.conversation.turns
            await wait_for(lambda: len(history) >= 2 and history[1]["content"] != answer)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    heard = history[1]["content"]
    assert history[1]["role"] == "assistant"
    assert heard.startswith("One,") and answer.startswith(heard) and heard != answer


# ------------------------------------------------------------------ the stage contract


class _Slow:
    """Takes a while over each question (a TTS stage pacing an earlier answer)."""

    accepts = (UserText,)
    inline = False
    passes_while_busy = ()

    async def process(self, frame: Any) -> Any:
        await asyncio.sleep(0.2)
        yield frame


async def test_run_stage_lets_a_confirmation_overtake_its_turn_as_the_runner_does() -> None:
    """The shipped helper feeds a stage the way the runner does, lanes included: the
    ordering that held a turn forever (bug 1) shows up in a unit test, and the turn
    controller copes with it."""
    from voicegrok.testing import run_stage

    frames = [
        UserText(turn_id=1, text="Count to six."),
        TurnStarted(turn_id=2, speech_end_s=0.0, tentative=True),
        TurnConfirmed(turn_id=2),
    ]
    out = await run_stage(_Slow(), frames)
    assert [(type(f).__name__, f.turn_id) for f in out] == [
        ("TurnConfirmed", 2),
        ("UserText", 1),
        ("TurnStarted", 2),
    ]
    ctl = TurnController()
    released = [d for f in out for d in ctl.feed(f)]
    assert "TurnStarted" in shown(released)


async def test_background_work_of_a_cancelled_turn_is_cancelled_by_the_runner() -> None:
    from voicegrok.pipeline import Background, Pipeline

    background = Background()
    async with Pipeline([_Slow()], background=background) as pipeline:
        mine = background.spawn(asyncio.sleep(10), turn_id=5)
        other = background.spawn(asyncio.sleep(10), turn_id=6)
        pipeline.cancel_turn(5)
        await asyncio.wait([mine], timeout=1)
        assert mine.cancelled() and not other.done()
    await asyncio.wait([other], timeout=1)
    assert other.cancelled(), "nothing outlives the pipeline"
    assert len(background) == 0


async def test_housekeeping_runs_off_the_loop_once_each_turn_is_heard() -> None:
    """``after_turn`` (the UI and talk give freed memory back to the system there) runs on
    a thread of its own, once per turn, after the turn's metrics are written."""
    rows: list[dict[str, object]] = []
    chores: list[tuple[str, int]] = []

    def after_turn() -> None:
        chores.append((threading.current_thread().name, len(rows)))

    async with Assistant(fake_engines(llm=FakeChat(["Fine, thanks."])), Settings()) as assistant:
        session = LiveSession(
            assistant, VirtualSpeaker(22050), on_metrics=rows.append, after_turn=after_turn
        )
        run = asyncio.create_task(session.run(None))
        try:
            for n in (1, 2):
                await session.ask("How are you?")
                await wait_for(lambda n=n: len(chores) == n, timeout_s=20)  # type: ignore[misc]
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    assert [written for _, written in chores] == [1, 2]
    assert all(name != threading.main_thread().name for name, _ in chores)
