"""Property-based fuzzing (hypothesis) of what a client can send ``voicegrok serve``: on
the sans-I/O session core (many examples), then through a real server beside a second
session (fewer). The audio path behind it: ``test_fuzz_audio.py``.

Every client event type the server takes is generated valid, then mutated (wrong JSON
types, missing and extra fields, huge strings and arrays, odd unicode and lone
surrogates), beside messages that are no event at all (non-objects, broken JSON, binary,
oversized, nested without end) and broken audio (odd byte counts, bad base64, absurd
formats). Every message is answered with an event or a well-formed ``error``, nothing
escapes, and the session, and every other one, goes on working."""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import itertools
import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from voicegrok.audio import PIPER_RATE_HZ, WHISPER_RATE_HZ, float_to_pcm16, resample
from voicegrok.config import Settings
from voicegrok.frames import (
    Frame,
    LLMToken,
    SpokenClause,
    TTSAudio,
    TurnMetrics,
    TurnStarted,
    UserText,
)
from voicegrok.protocol import realtime as rt
from voicegrok.server.app import RealtimeServer
from voicegrok.server.commands import Ask, Capabilities, CommitSpeech, Hear, Transcribe
from voicegrok.server.core import SessionCore
from voicegrok.server.session import RealtimeSession
from voicegrok.testing import FakeChat, FakeSTT, FakeVAD, fake_engines
from voicegrok.turns import EndTurn

from .conftest import ask_item, no_sessions, raw, serve, typed_turn, wait_for
from .fuzz_strategies import (
    EVENTS,
    LATEST_ITEM,
    LATEST_RESPONSE,
    MAX_MESSAGE,
    exchanges,
    messages,
)

ANSWER = {
    "session.update": "session.updated",
    "input_audio_buffer.append": None,  # audio is not acknowledged (as OpenAI's server)
    "input_audio_buffer.commit": "input_audio_buffer.committed",
    "input_audio_buffer.clear": "input_audio_buffer.cleared",
    "conversation.item.create": "conversation.item.created",
    "response.create": "response.created",
    "response.cancel": "response.done",
    "conversation.item.truncate": "conversation.item.truncated",
}
"""The event that answers each client event when it is not refused."""

pytestmark = pytest.mark.filterwarnings(
    # hypothesis warns when a failing example's repr is huge (a 1 MB message); the
    # repr is only for the failure report
    "ignore:Generating overly large repr:hypothesis.errors.HypothesisWarning"
)

CAPABILITIES = [
    Capabilities(listens=True, transcribes=True, speaks=True, max_output_tokens=400),
    Capabilities(listens=False, transcribes=True, speaks=True, max_output_tokens=400),
    Capabilities(listens=False, transcribes=False, speaks=False, max_output_tokens=400),
]
REPLY = [("One,", "two."), ("Three", " four.")]
"""The scripted assistant's answer: two clauses of two tokens."""
CLAUSE_S = 0.3
"""Seconds of speech per clause (at Piper's rate, 22.05 kHz, as the real voice)."""


def answer_frames(turn_id: int, question: str) -> list[Frame]:
    """The frames an assistant puts out for a typed question: the answer ``REPLY``."""
    frames: list[Frame] = [
        TurnStarted(turn_id=turn_id, speech_end_s=0.0, source="text"),
        UserText(turn_id=turn_id, text=question, source="text"),
    ]
    n = itertools.count()
    times_s = np.arange(int(CLAUSE_S * PIPER_RATE_HZ)) / PIPER_RATE_HZ
    pcm = float_to_pcm16((0.1 * np.sin(2 * np.pi * 220 * times_s)).astype(np.float32))
    for index, tokens in enumerate(REPLY):
        frames += [LLMToken(turn_id=turn_id, text=t, index=next(n)) for t in tokens]
        text = "".join(tokens).strip()
        frames.append(SpokenClause(turn_id=turn_id, index=index, text=text, spoken=text))
        frames.append(
            TTSAudio(turn_id=turn_id, pcm=pcm, sample_rate_hz=PIPER_RATE_HZ, clause_index=index)
        )
    frames.append(
        TurnMetrics(
            turn_id=turn_id,
            source="text",
            stt_ms=None,
            llm_first_token_ms=1.0,
            tts_first_audio_ms=1.0,
            first_audio_ms=1.0,
            total_ms=2.0,
            tokens_per_s=100.0,
            n_tokens=4,
            clauses=len(REPLY),
            audio_s=CLAUSE_S * len(REPLY),
        )
    )
    return frames


@dataclass
class Harness:
    """A :class:`SessionCore` driven without sockets or event loop, its commands carried
    out as :class:`~voicegrok.server.session.RealtimeSession` does, by a scripted assistant
    whose answers come a frame at a time (``tick``) and a fake speech-to-text."""

    can: Capabilities
    core: SessionCore = field(init=False)
    told: rt.Session = field(init=False)
    """The session as the client was last told it."""
    frames: list[Frame] = field(default_factory=list)
    """The answer still to come."""
    latest: dict[str, str] = field(default_factory=dict)
    turns: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    stt: FakeSTT = field(default_factory=lambda: FakeSTT(["hello there"]))

    def __post_init__(self) -> None:
        self.core = SessionCore(self.can, "Be brief.")
        (created,) = self.run(self.core.start())
        assert isinstance(created, rt.SessionCreated)

    def send(self, message: str | bytes) -> list[rt._ServerEvent]:
        if isinstance(message, str):
            message = message.replace(LATEST_ITEM, self.latest.get("item", LATEST_ITEM))
            message = message.replace(LATEST_RESPONSE, self.latest.get("resp", LATEST_RESPONSE))
        return self.run(self.core.receive_message(message))

    def tick(self, n: int) -> list[rt._ServerEvent]:
        """The assistant puts out ``n`` more frames of its answer."""
        events: list[rt._ServerEvent] = []
        while n and self.frames:
            events += self.run(self.core.frame(self.frames.pop(0)))
            n -= 1
        return events

    def run(self, outputs: list[Any]) -> list[rt._ServerEvent]:
        events: list[rt._ServerEvent] = []
        for out in outputs:
            if isinstance(out, rt._ServerEvent):
                events.append(out)
                sendable(out)
                if isinstance(out, rt.SessionCreated | rt.SessionUpdated):
                    self.told = out.session
                elif isinstance(out, rt.ResponseCreated):
                    self.latest["resp"] = out.response.id
                elif isinstance(out, rt.OutputItemAdded) and out.item.id:
                    self.latest["item"] = out.item.id
            elif isinstance(out, Hear):
                clean_audio(out.samples, out.sample_rate_hz)
            elif isinstance(out, Ask):
                turn_id = next(self.turns)
                events += self.run(self.core.asked(turn_id))
                self.frames = answer_frames(turn_id, out.text)
            elif isinstance(out, Transcribe):
                clean_audio(out.samples, out.sample_rate_hz)
                audio = resample(out.samples, out.sample_rate_hz, WHISPER_RATE_HZ)
                events += self.run(self.core.transcribed(out, self.stt.transcribe(audio)))
            elif isinstance(out, CommitSpeech):  # the listener has taken in the audio
                events += self.run(self.core.commit_speech(out.event_id, None))  # no listener
            elif isinstance(out, EndTurn):  # the assistant stops the turn's work
                self.frames = [f for f in self.frames if f.turn_id != out.turn_id]
            # Rebuild, SetInstructions, EditHistory: the assistant's own business
        return events


def kinds(events: list[rt._ServerEvent]) -> list[str]:
    return [e.type for e in events]  # type: ignore[attr-defined]


def sendable(event: rt._ServerEvent) -> None:
    """The event can go on the wire and a client reads it back the same."""
    back = rt.parse_server_event(rt.encode(event))
    assert back is not None and kinds([back]) == kinds([event])


def clean_audio(samples: np.ndarray, rate_hz: int) -> None:
    """Client audio as the assistant gets it: float32 in full scale, at a rate it takes."""
    assert samples.dtype == np.float32 and samples.ndim == 1
    assert np.all(np.abs(samples) <= 1.0)
    assert rate_hz in rt.PCM_RATES_HZ


def client_event_id(message: str | bytes) -> str | None:
    """The ``event_id`` an error about ``message`` must echo: the client's, when it is a
    string that can be sent back (no lone surrogate)."""
    if isinstance(message, bytes) or len(message) > MAX_MESSAGE:
        return None
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return None
    event_id = data.get("event_id") if isinstance(data, dict) else None
    if not isinstance(event_id, str):
        return None
    try:
        event_id.encode()
    except UnicodeEncodeError:
        return None
    return event_id


def check_answered(
    message: str | bytes, events: list[rt._ServerEvent], *, alone: bool = True
) -> None:
    """``message`` got its answer or a well-formed error (``alone``: and nothing else came
    meanwhile; a live session's own turns go on beside it)."""
    errors = [
        e
        for e in events
        if isinstance(e, rt.ErrorEvent) and e.error.type == "invalid_request_error"
    ]
    if errors or (alone and any(isinstance(e, rt.ErrorEvent) for e in events)):
        assert len(errors) == 1 and not (alone and len(events) > 1), kinds(events)
        info = errors[0].error
        assert info.code and info.message
        assert info.event_id == client_event_id(message)
        return
    data = json.loads(message)
    assert isinstance(data, dict) and data.get("type") in ANSWER, "not refused"
    answer = ANSWER[data["type"]]
    assert answer is None or answer in kinds(events)


def check_typed_turn(h: Harness) -> None:
    """A typed question gets the whole answer, as the session was last described."""
    h.tick(10_000)  # the answer under way ends
    ask = {"type": "conversation.item.create", "item": ask_item("Count."), "event_id": "q"}
    assert kinds(h.send(json.dumps(ask))) == ["conversation.item.created"]
    events = h.send('{"type": "response.create"}')
    assert kinds(events) == ["response.created"]
    events += h.tick(10_000)
    done = [e for e in events if isinstance(e, rt.ResponseDone)]
    assert len(done) == 1 and done[0].response.status == "completed"
    words = "".join(t for clause in REPLY for t in clause)
    if h.told.output_modalities == ["audio"]:
        said = [e.delta for e in events if isinstance(e, rt.AudioTranscriptDelta)]
        pcm = b"".join(e.delta for e in events if isinstance(e, rt.AudioDelta))
        assert h.told.audio and h.told.audio.output and h.told.audio.output.format
        rate = h.told.audio.output.format.rate
        expected = CLAUSE_S * len(REPLY) * rate
        assert 0.95 * expected < len(pcm) // 2 <= expected + 1, (len(pcm) // 2, rate)
    else:
        said = [e.delta for e in events if isinstance(e, rt.TextDelta)]
    assert "".join(said) == words


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A call that never returns ends the run with a traceback instead of hanging it."""
    faulthandler.dump_traceback_later(300, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def test_every_event_type_the_server_takes_is_generated() -> None:
    assert set(EVENTS) == set(ANSWER) == rt.CLIENT_EVENT_TYPES


FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


FOUND = [
    # a lone surrogate in an echoed event_id, event type or item_id made an error event
    # that could not be encoded (PydanticSerializationError out of the session)
    '{"type": "input_audio_buffer.clear", "event_id": "\\ud800"}',
    '{"type": "\\ud800"}',
    '{"type": "conversation.item.truncate", "item_id": "\\udc00", "audio_end_ms": 49}',
    # an event type that is not hashable: TypeError
    '{"type": []}',
    # arrays nested past the JSON decoder's stack: RecursionError
    "[" * 100_000 + "]" * 100_000,
    # a typed message was not acknowledged (no conversation.item.created)
    '{"type": "conversation.item.create", "item": {"content": [{"type": "text", "text": "0"}]}}',
]
"""Messages that once crashed a session or went unanswered."""


@FUZZ
@given(
    can=st.sampled_from(CAPABILITIES),
    steps=st.lists(st.one_of(messages, exchanges, st.integers(1, 12)), max_size=16),
)
def test_every_message_is_answered_and_the_session_goes_on(
    can: Capabilities, steps: list[str | bytes | list[str | int] | int]
) -> None:
    """Each message gets its answer or a well-formed ``error`` (the client's event_id
    echoed), every event can be sent, and then a typed question still gets a whole answer.
    (An int: the assistant puts out that many frames of the answer under way.)"""
    h = Harness(can)
    for step in steps:
        for each in step if isinstance(step, list) else [step]:
            if isinstance(each, int):
                h.tick(each)
            else:
                check_answered(each, h.send(each))
    check_typed_turn(h)


@pytest.mark.parametrize("message", FOUND, ids=range(len(FOUND)))
def test_messages_that_once_broke_a_session_are_answered(message: str) -> None:
    """Each is answered (an error, or its event), and the session goes on."""
    h = Harness(CAPABILITIES[0])
    check_answered(message, h.send(message))
    check_typed_turn(h)


# ---------------------------------------------------------------- through a real server


LIVE_REPLY = "Hello there. How are you?"


@dataclass
class Live:
    """A ``voicegrok serve`` on fake engines (a VAD among them: turn detection is on), in a
    thread with an event loop of its own, for the whole module; what it logs at ERROR or
    above (a session's handler that failed, a task that died) is kept in ``failures``."""

    server: RealtimeServer
    thread: threading.Thread
    failures: list[logging.LogRecord]


class _Keep(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() != "opening handshake failed":  # a client left mid-handshake
            self.records.append(record)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    engines = fake_engines(llm=FakeChat([LIVE_REPLY], token_delay_s=0.002))
    engines.vad = FakeVAD()
    failures: list[logging.LogRecord] = []
    keep = _Keep(failures)
    logging.getLogger().addHandler(keep)
    started: list[tuple[RealtimeServer, asyncio.AbstractEventLoop, asyncio.Event]] = []

    async def run() -> None:
        stop = asyncio.Event()
        async with serve(engines) as server:
            started.append((server, asyncio.get_running_loop(), stop))
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(run(),), name="fuzzed server")
    thread.start()
    for _ in range(200):
        if started:
            break
        time.sleep(0.05)
    server, loop, stop = started[0]
    yield Live(server, thread, failures)
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    logging.getLogger().removeHandler(keep)
    engines.close()


async def hostile_session(server: RealtimeServer, steps: list[str | bytes | int]) -> None:
    """Send each message, then a marker (an unknown event whose error echoes its id): what
    comes before the marker's error answers the message. An int: wait that many 10 ms.
    Then a typed question is answered in full. A message beyond the connection's limit
    (4 times the largest message, as the README says) closes the connection with 1009
    ("message too big"); the session goes on on a new connection."""
    latest: dict[str, str] = {}
    closes_at = 4 * server.options.limits.max_message_bytes
    async with contextlib.AsyncExitStack() as stack:
        c = await stack.enter_async_context(raw(server, max_size=None))
        for i, step in enumerate(steps):
            if isinstance(step, int):
                await asyncio.sleep(step / 100)
                continue
            message = step
            if isinstance(message, str):
                message = message.replace(LATEST_ITEM, latest.get("item", LATEST_ITEM))
                message = message.replace(LATEST_RESPONSE, latest.get("resp", LATEST_RESPONSE))
            size = len(message.encode() if isinstance(message, str) else message)
            if size > closes_at:
                await c.ws.send(message)
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await c.ws.recv()
                assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
                await stack.aclose()
                c = await stack.enter_async_context(raw(server, max_size=None))
                latest = {}
                continue
            await c.ws.send(message)
            await c.send({"type": "fuzz.marker", "event_id": f"marker_{i}"})
            events: list[rt._ServerEvent] = []
            while True:
                event = rt.parse_server_event(await c.ws.recv())
                assert event is not None
                if isinstance(event, rt.ErrorEvent) and event.error.event_id == f"marker_{i}":
                    break
                events.append(event)
                if isinstance(event, rt.ResponseCreated):
                    latest["resp"] = event.response.id
                elif isinstance(event, rt.OutputItemAdded) and event.item.id:
                    latest["item"] = event.item.id
            check_answered(message, events, alone=False)
        # then, turn detection off (a noise might start a turn), a typed question
        off = {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
        await c.send(off)
        await c.next("session.updated")
        await c.ask("Hello?")
        done = rt.parse_server_event(json.dumps(await c.next("response.done")))
        assert isinstance(done, rt.ResponseDone) and done.response.status == "completed"
        assert [item.text() for item in done.response.output] == [LIVE_REPLY]


ASK = [
    json.dumps({"type": "conversation.item.create", "item": ask_item("Count.")}),
    '{"type": "response.create"}',
]
TOO_BIG = json.dumps({"type": "é" * 400_000, "item": "é" * 400_000})


@settings(FUZZ, max_examples=50)
@given(steps=st.lists(st.one_of(messages, exchanges), min_size=1, max_size=10))
@example(steps=[ASK])  # then the answer is cancelled by turning detection off: see below
@example(steps=[ASK, TOO_BIG, ASK])  # found by hypothesis: 4.8 MB, beyond the connection's limit
def test_a_hostile_session_neither_stops_the_server_nor_disturbs_another(
    live: Live, steps: list[str | bytes | list[str | int]]
) -> None:
    """Messages on one connection each get their answer or an error (the connection
    stays open) and then its typed question is answered in full; meanwhile another
    session's typed turn is answered; nothing fails in the server, and both sessions end
    when their clients leave."""
    flat = [each for step in steps for each in (step if isinstance(step, list) else [step])]
    live.failures.clear()

    async def both() -> dict[str, Any]:
        async with asyncio.timeout(60):
            _, done = await asyncio.gather(
                hostile_session(live.server, flat), typed_turn(live.server, "Hello?")
            )
            await no_sessions(live.server, 10)
        return done

    done = asyncio.run(both())
    assert done["response"]["status"] == "completed"
    assert live.thread.is_alive() and not live.failures, live.failures


async def test_a_new_assistant_goes_on_with_the_turn_ids_of_the_last() -> None:
    """Found through the server: a question, then at once a ``session.update`` that makes
    the session's assistant anew (its answer cancelled), then another question. The new
    assistant numbered its turn 1 again, the cancelled turn's id, and the session's turn
    controller took it for that one: the answer was cancelled too, or never ended."""
    engines = fake_engines(llm=FakeChat([LIVE_REPLY]))
    engines.vad = FakeVAD()
    events: list[rt._ServerEvent] = []

    async def send(event: rt._ServerEvent) -> None:
        events.append(event)

    session = RealtimeSession(engines, Settings(), send)
    await session.start()
    off = {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
    try:
        for message in [*ASK, json.dumps(off), *ASK]:
            await session.handle_message(message)
        await wait_for(lambda: len([e for e in events if isinstance(e, rt.ResponseDone)]) == 2, 10)
    finally:
        await session.close()
        engines.close()
    first, second = [e.response for e in events if isinstance(e, rt.ResponseDone)]
    assert first.status == "cancelled"
    assert second.status == "completed"
    assert [item.text() for item in second.output] == [LIVE_REPLY]
