"""``voicegrok serve`` over a real websocket with the real models: the official ``openai``
SDK's realtime client (nobody here wrote it) for typed and spoken turns, and abuse."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from openai import AsyncOpenAI
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from voicegrok.assistant import Engines
from voicegrok.audio import load_audio
from voicegrok.server.app import RealtimeServer
from voicegrok.server.session import Limits

from .conftest import (
    DEMO,
    ask_item,
    no_sessions,
    pcm16,
    raw,
    rss_mb,
    serve,
    typed_turn,
    wait_for,
    words,
)
from .test_vad import voiced_span

RATE = 24000


def sdk(server: RealtimeServer, token: str = "unused") -> AsyncOpenAI:
    return AsyncOpenAI(api_key=token, websocket_base_url=f"ws://127.0.0.1:{server.port}/v1")


async def until_done(conn: Any, timeout_s: float = 90) -> list[Any]:
    """Events up to and including the next ``response.done``."""
    events = []
    async with asyncio.timeout(timeout_s):
        async for event in conn:
            events.append(event)
            if event.type == "response.done":
                return events
    raise AssertionError("the connection closed before response.done")


def audio_of(events: list[Any]) -> np.ndarray:
    pcm = b"".join(
        base64.b64decode(e.delta) for e in events if e.type == "response.output_audio.delta"
    )
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


def transcript_of(events: list[Any]) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_audio_transcript.delta")


async def append_audio(conn: Any, audio: np.ndarray) -> None:
    """Send 24 kHz audio as ``input_audio_buffer.append`` events of 100 ms each."""
    step = RATE // 10
    for i in range(0, len(audio), step):
        chunk = base64.b64encode(pcm16(audio[i : i + step])).decode()
        await conn.input_audio_buffer.append(audio=chunk)


def heard_text(events: list[Any]) -> str:
    """The transcript of the spoken question among ``events``."""
    return str(
        next(
            e.transcript
            for e in events
            if e.type == "conversation.item.input_audio_transcription.completed"
        )
    )


def hears(engines: Engines, audio: np.ndarray) -> str:
    """What whisper hears in 24 kHz audio."""
    import soxr

    assert engines.stt is not None
    return engines.stt.transcribe(soxr.resample(audio, RATE, 16000).astype(np.float32))


async def test_the_openai_sdk_gets_a_spoken_answer_to_a_typed_question(
    listening: Engines,
) -> None:
    """A typed question through the official SDK: text deltas, audio deltas that say that
    text, response.done completed, and voicegrok's metrics event (which the SDK tolerates)."""
    async with serve(listening) as server, sdk(server).realtime.connect(model="voicegrok") as conn:
        created = await anext(aiter(conn))
        assert created.type == "session.created"
        await conn.conversation.item.create(item=ask_item("What is the capital of France?"))
        await conn.response.create()
        events = await until_done(conn)
        done = events[-1]
        assert done.response.status == "completed", done
        text = transcript_of(events)
        assert "Paris" in text
        audio = audio_of(events)
        assert len(audio) / RATE > 0.8
        said = set(words(hears(listening, audio)))
        assert said and len(said & set(words(text))) / len(said) >= 0.5, (said, text)
        metrics = json.loads((await conn.recv_bytes()).decode())
        assert metrics["type"] == "voicegrok.metrics"
        assert metrics["metrics"]["n_tokens"] > 0 and metrics["metrics"]["tokens_per_s"] > 0


async def test_a_spoken_question_appended_as_audio_is_transcribed_and_answered(
    listening: Engines,
) -> None:
    """Server VAD: a recorded question streamed in 100 ms pieces gets speech_started,
    speech_stopped, the transcription and a spoken answer."""
    question = load_audio(str(DEMO / "turn3.wav"), RATE)
    audio = np.concatenate([np.zeros(RATE // 2, np.float32), question, np.zeros(RATE, np.float32)])
    async with serve(listening) as server, sdk(server).realtime.connect(model="voicegrok") as conn:
        await append_audio(conn, audio)
        events = await until_done(conn)
        types = [e.type for e in events]
        for expected in (
            "input_audio_buffer.speech_started",
            "input_audio_buffer.speech_stopped",
            "input_audio_buffer.committed",
            "conversation.item.input_audio_transcription.completed",
            "response.created",
            "response.output_audio.delta",
        ):
            assert expected in types, types
        heard = heard_text(events)
        assert "column" in heard and "cost" in heard, heard
        assert events[-1].response.status == "completed"
        assert len(audio_of(events)) / RATE > 0.5
        # positions in the appended audio, as OpenAI's: the first and the last voiced sample
        # (not how much audio had arrived when the turn was decided)
        start_s, end_s = voiced_span(load_audio(str(DEMO / "turn3.wav")))  # at 16 kHz
        started = next(e for e in events if e.type == "input_audio_buffer.speech_started")
        stopped = next(e for e in events if e.type == "input_audio_buffer.speech_stopped")
        assert abs(started.audio_start_ms / 1000 - (0.5 + start_s)) <= 0.1, started
        assert abs(stopped.audio_end_ms / 1000 - (0.5 + end_s)) <= 0.1, stopped


async def test_response_cancel_stops_the_deltas(listening: Engines) -> None:
    """response.cancel mid-answer: response.done says cancelled and no delta follows it."""
    async with serve(listening) as server, sdk(server).realtime.connect(model="voicegrok") as conn:
        await conn.conversation.item.create(
            item=ask_item("Make me a detailed two day itinerary for New York City.")
        )
        await conn.response.create()
        async with asyncio.timeout(60):
            async for event in conn:
                if event.type == "response.output_audio.delta":
                    break
        await conn.response.cancel()
        events = await until_done(conn)
        assert events[-1].response.status == "cancelled"
        late: list[str] = []
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                async for event in conn:
                    late.append(event.type)
        assert not [t for t in late if ".delta" in t], late
        # the conversation goes on
        await conn.conversation.item.create(item=ask_item("Thanks. What is two plus two?"))
        await conn.response.create()
        assert (await until_done(conn))[-1].response.status == "completed"


# ------------------------------------------------------------------------ abuse


async def test_bad_messages_get_error_events_and_the_session_survives(listening: Engines) -> None:
    """Malformed JSON, unknown types, bad base64, a wrong format, an oversize message, a
    binary frame: one error event each, with a code; then a normal turn still works."""
    limits = Limits(max_message_bytes=64 * 1024)
    async with serve(listening, limits=limits) as server:
        async with raw(server) as c:
            bad: list[str | dict[str, Any]] = [
                "{not json",
                "[1, 2]",
                {"type": "nonsense.event"},
                {"type": "input_audio_buffer.append", "audio": "!!!not base64!!!"},
                {"type": "input_audio_buffer.append", "audio": "AA=="},  # 1 byte: not PCM16
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"format": {"type": "audio/pcmu"}}}},
                },
                {"type": "conversation.item.truncate", "item_id": "item_nope", "audio_end_ms": 5},
                {"type": "response.cancel"},
                {"type": "response.create", "response": {"output_modalities": ["video"]}},
                {"type": "input_audio_buffer.commit"},  # server VAD on, nothing spoken
                "x" * (100 * 1024),
            ]
            for message in bad:
                await c.send(message)
            await c.ws.send(b"\x00\x01binary")
            errors = await c.errors(len(bad) + 1)
            codes = [e["code"] for e in errors]
            assert codes == [
                "invalid_json",
                "invalid_json",
                "unknown_event",
                "invalid_base64",
                "invalid_base64",
                "unsupported_format",
                "item_not_found",
                "response_cancel_not_active",
                "invalid_value",
                "input_audio_buffer_commit_empty",
                "message_too_large",
                "invalid_json",
            ], errors
            assert all(e["message"] for e in errors)
            await c.send({"type": "conversation.item.create", "item": ask_item("Say hello.")})
            await c.send({"type": "response.create"})
            done = await c.next("response.done")
            assert done["response"]["status"] == "completed"


async def test_a_thousand_garbage_messages_do_not_disturb_another_session(
    listening: Engines,
) -> None:
    """One client sends 1,000 garbage messages as fast as it can: the first 200 (a burst at
    100 a second) are refused one by one, in order; the rest beyond the rate are dropped
    with a ``rate_limited`` notice a second, not one each; meanwhile a well-behaved
    session's turn completes."""
    async with serve(listening) as server:

        async def garbage() -> tuple[list[str], float]:
            codes: list[str] = []
            async with raw(server) as c:
                start = time.monotonic()
                for i in range(1000):
                    await c.send("{garbage" if i % 2 else {"type": f"junk.{i}"})
                last = start
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        while True:
                            event = json.loads(await c.ws.recv())
                            last = time.monotonic()
                            if event["type"] == "error":
                                codes.append(event["error"]["code"])
            return codes, last - start

        (codes, span_s), done = await asyncio.gather(garbage(), typed_turn(server))
        assert done["response"]["status"] == "completed"
        assert codes[:200] == ["invalid_json" if i % 2 else "unknown_event" for i in range(200)]
        refused = [c for c in codes[200:] if c != "rate_limited"]
        notices = len(codes) - 200 - len(refused)
        assert set(refused) <= {"invalid_json", "unknown_event"}, refused
        # the bucket refills at 100 a second: that many more are refused one by one
        assert len(refused) <= 100 * span_s + 1, (len(refused), span_s)
        assert 1 <= notices <= 1 + span_s, (notices, span_s)


async def test_off_loopback_a_token_is_required(listening: Engines) -> None:
    """Binding beyond loopback without a token is refused; with one, a client without it
    (or with a wrong one) is refused before any model work, and the SDK's bearer token or a
    browser's ?token= gets in."""
    with pytest.raises(ValueError, match="token"):
        serve(listening, host="0.0.0.0")
    async with serve(listening, host="0.0.0.0", token="s3cret") as server:
        for query, headers in (("", {}), ("?token=wrong", {}), ("", {"Authorization": "Bearer x"})):
            with pytest.raises(InvalidStatus) as e:
                async with raw(server, query, additional_headers=headers):
                    pass
            assert e.value.response.status_code == 401
        async with raw(server, "?token=s3cret") as c:
            assert c.ws.response.status_code == 101
        async with sdk(server, token="s3cret").realtime.connect(model="voicegrok") as conn:
            assert (await anext(aiter(conn))).type == "session.created"
        await no_sessions(server)


async def test_foreign_web_pages_are_refused(listening: Engines) -> None:
    """A browser on another site (its Origin header) cannot use the server; the server's
    own page can."""
    async with serve(listening) as server:
        with pytest.raises(InvalidStatus) as e:
            async with raw(server, origin="http://evil.example"):
                pass
        assert e.value.response.status_code == 403
        own = f"http://127.0.0.1:{server.port}"
        async with raw(server, origin=own) as c:
            assert c.ws.response.status_code == 101


async def test_a_flood_of_connections_is_refused_politely(listening: Engines) -> None:
    """60 connections at once with room for 4 sessions, one of them taken: exactly 3 get
    in, the other 57 get a server_busy error and a close (1013); the session that was
    there first is still served, and once the flood has left a newcomer gets in again."""
    async with serve(listening, limits=Limits(max_sessions=4)) as server, raw(server) as first:
        url = f"ws://127.0.0.1:{server.port}/v1/realtime"
        n = 60
        answered = asyncio.Event()
        firsts: list[str] = []

        async def intruder() -> tuple[str, int | None]:
            async with connect(url) as ws:
                event = json.loads(await ws.recv())
                firsts.append(event["type"])
                if len(firsts) == n:
                    answered.set()
                if event["type"] == "error":
                    await ws.wait_closed()
                    return str(event["error"]["code"]), ws.close_code
                await answered.wait()  # every admitted one holds its place through the flood
                return str(event["type"]), None

        outcomes = await asyncio.wait_for(asyncio.gather(*(intruder() for _ in range(n))), 60)
        kinds = [kind for kind, _ in outcomes]
        assert kinds.count("session.created") == 3, kinds
        assert kinds.count("server_busy") == n - 3, kinds
        assert {code for kind, code in outcomes if kind == "server_busy"} == {1013}
        await first.ask("Say hello.")
        assert (await first.next("response.done", 120))["response"]["status"] == "completed"
        await wait_for(lambda: len(server.sessions) == 1, 10)
        async with raw(server):
            pass


async def test_an_idle_session_is_closed_with_an_error(listening: Engines) -> None:
    async with serve(listening, limits=Limits(idle_timeout_s=1.0)) as server:
        async with raw(server) as c:
            error = await c.next("error", timeout_s=10)
            assert error["error"]["code"] == "idle_timeout"
            await asyncio.wait_for(c.ws.wait_closed(), 5)
        await no_sessions(server)


async def test_a_client_that_vanishes_mid_answer_frees_its_work(listening: Engines) -> None:
    """Disconnecting during an answer ends the session at once; the next client is
    answered without waiting for the abandoned answer."""
    async with serve(listening) as server:
        async with raw(server) as c:
            await c.send(
                {"type": "conversation.item.create", "item": ask_item("Tell me a long story.")}
            )
            await c.send({"type": "response.create"})
            await c.next("response.output_audio_transcript.delta")
        # the connection is closed mid-answer
        await no_sessions(server)
        done = await typed_turn(server)
        assert done["response"]["status"] == "completed"


async def test_the_browser_page_is_served(listening: Engines) -> None:
    import urllib.request

    async with serve(listening) as server:
        base = f"http://127.0.0.1:{server.port}"

        def get(path: str) -> tuple[int, str, str]:
            try:
                with urllib.request.urlopen(base + path, timeout=5) as r:
                    return r.status, r.headers["Content-Type"], r.read().decode()
            except urllib.error.HTTPError as e:
                return e.code, "", ""

        status, kind, body = await asyncio.to_thread(get, "/")
        assert status == 200 and kind.startswith("text/html") and "app.js" in body
        assert (await asyncio.to_thread(get, "/worklet.js"))[0] == 200
        assert (await asyncio.to_thread(get, "/../pyproject.toml"))[0] == 404


async def test_twenty_concurrent_sessions_all_complete_on_one_copy_of_the_models(
    listening: Engines,
) -> None:
    """20 typed sessions at once: every one completes, and memory grows by a few MB per
    session (the models are shared, not copied: one LLM copy alone would be ~100 MB)."""
    async with serve(listening, limits=Limits(max_sessions=20)) as server:
        await typed_turn(server)  # first-use allocations are not per-session memory
        before = rss_mb()
        questions = ["What is the capital of France?", "Name a fruit.", "Say hello."]
        turns = [typed_turn(server, questions[i % 3]) for i in range(20)]
        done = await asyncio.gather(*turns)
        grown = rss_mb() - before
    assert [d["response"]["status"] for d in done] == ["completed"] * 20
    assert grown / 20 < 15, f"{grown:.0f} MB for 20 sessions"


async def test_a_turn_holds_at_most_max_buffer_s_of_audio(listening: Engines) -> None:
    """Turn detection off: audio beyond the per-turn limit is refused; the buffer can then
    be committed (or cleared) as usual."""
    async with serve(listening, limits=Limits(max_buffer_s=2.0)) as server, raw(server) as c:
        await c.send(
            {"type": "session.update", "session": {"audio": {"input": {"turn_detection": None}}}}
        )
        await c.next("session.updated")
        second = base64.b64encode(pcm16(np.zeros(RATE, np.float32))).decode()
        for _ in range(3):
            await c.send({"type": "input_audio_buffer.append", "audio": second})
        error = (await c.errors(1))[0]
        assert error["code"] == "input_audio_buffer_full" and "2 s" in error["message"]
        await c.send({"type": "input_audio_buffer.clear"})
        await c.next("input_audio_buffer.cleared")


async def test_a_client_that_does_not_read_does_not_stall_others(listening: Engines) -> None:
    """One client asks for a long answer and never reads it; another session's turn
    completes meanwhile."""
    async with serve(listening) as server, raw(server) as idle:
        await idle.send(
            {"type": "conversation.item.create", "item": ask_item("Tell me a long story.")}
        )
        await idle.send({"type": "response.create"})
        done = await typed_turn(server, "What is the capital of France?")
        assert done["response"]["status"] == "completed"


@pytest.fixture
def tls_pair(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    import subprocess

    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_serves_wss_and_https(listening: Engines, tls_pair: tuple[Path, Path]) -> None:
    """--certfile/--keyfile: the page over HTTPS and the API over WSS (what phones need)."""
    import ssl
    import urllib.request

    cert, key = tls_pair
    context = ssl.create_default_context(cafile=str(cert))
    async with serve(listening, certfile=str(cert), keyfile=str(key)) as server:
        url = f"wss://127.0.0.1:{server.port}/v1/realtime"
        async with connect(url, ssl=context) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"

        def get() -> int:
            with urllib.request.urlopen(
                f"https://127.0.0.1:{server.port}/", context=context, timeout=5
            ) as r:
                return int(r.status)

        assert await asyncio.to_thread(get) == 200


async def test_a_refused_session_update_changes_nothing(listening: Engines) -> None:
    async with serve(listening) as server, raw(server) as c:
        bad = {
            "instructions": "Speak like a pirate.",
            "audio": {
                "input": {"turn_detection": {"type": "server_vad", "create_response": False}}
            },
        }
        await c.send({"type": "session.update", "session": bad})
        assert (await c.errors(1))[0]["code"] == "unsupported_turn_detection"
        await c.send({"type": "session.update", "session": {}})
        session = (await c.next("session.updated"))["session"]
        assert session["instructions"] != "Speak like a pirate."
        assert session["audio"]["input"]["turn_detection"]["create_response"] is True
