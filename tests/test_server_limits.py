"""``voicegrok serve``'s limits (README, *Safety and limits*) over a real websocket, with
scripted engines (the models play no part in them): a client that stops reading is
dropped, a flood of requests is rate limited with one notice a second, and in both cases
the server goes on serving."""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

from voicegrok.assistant import Engines
from voicegrok.config import Settings
from voicegrok.server.session import Limits
from voicegrok.testing import FakeChat, FakeSTT, FakeTTS

from .conftest import raw, serve, typed_turn, wait_for


def chatty_engines(sentences: int) -> tuple[Engines, Settings]:
    """Engines whose first two answers are ``sentences`` sentences of 1.5 s of audio each
    (about 100 KB a sentence on the wire), made as fast as the fakes go; later answers are
    short."""
    reply = " ".join(f"Sentence number {i}." for i in range(sentences))
    chat = FakeChat([reply, reply, "Hello."], n_ctx=1_000_000)
    engines = Engines(stt=FakeSTT(), llm=chat, tts=FakeTTS(samples_per_char=1600))
    # no pacing to real time: the audio goes out as fast as it is made
    settings = Settings(max_tokens=4 * sentences, tts_lead_s=1e6)
    return engines, settings


async def test_a_client_that_stops_reading_is_dropped_and_others_are_served() -> None:
    """Two clients ask for the same 15 MB answer: the one that reads it gets all of it; the
    one that reads nothing is dropped once more than ``max_outbox_bytes`` wait for it (the
    kernel's buffers hold only a little more), and a newcomer is then served. (A client
    that does not read cannot read the close frame either: it finds the connection gone.)"""
    engines, settings = chatty_engines(120)
    limits = Limits(max_outbox_bytes=1 << 20)
    async with serve(engines, settings, limits=limits) as server:

        async def reads_everything() -> tuple[int, str]:
            async with raw(server, max_size=None) as c:
                await c.ask("Talk.")
                events = await c.until("response.done", 120)
                audio = sum(len(e["delta"]) for e in events if e["type"].endswith("audio.delta"))
                return audio, events[-1]["response"]["status"]

        reader = asyncio.create_task(reads_everything())
        # a small receive buffer: what waits for this client waits on the server
        async with raw(server, rcvbuf=16 << 10, max_queue=1, close_timeout=1) as idle:
            await idle.ask("Talk.")
            audio_b64, status = await asyncio.wait_for(reader, 120)
            assert status == "completed"
            assert audio_b64 > 12 << 20  # the answer is far more than the limit
            # the server ends this session too (how soon: the next test)
            await wait_for(lambda: not server.sessions, 30)
            # then this client reads what reached it before it was dropped, and the close
            received = 0
            with pytest.raises(ConnectionClosed):
                async with asyncio.timeout(60):
                    while True:
                        received += len(await idle.ws.recv())
            assert received < audio_b64, "it was dropped before the end of the answer"
        await wait_for(lambda: not server.sessions, 10)
        done = await typed_turn(server, "Hello?")
        assert done["response"]["status"] == "completed"


async def test_a_client_that_stops_reading_is_dropped_promptly() -> None:
    """The drop happens when the answer's backlog passes the limit (within a second here),
    not at the next keepalive ping 20 s after the connection opened: this client is gone
    15 s after its question, which keepalive alone cannot do."""
    engines, settings = chatty_engines(120)
    async with serve(engines, settings, limits=Limits(max_outbox_bytes=1 << 20)) as server:
        async with raw(server, rcvbuf=16 << 10, max_queue=1, close_timeout=1) as idle:
            await idle.ask("Talk.")
            await wait_for(lambda: not server.sessions, 15)


async def test_a_flood_of_requests_gets_one_rate_limited_notice_a_second() -> None:
    """Bursts of 60 requests 0.6 s apart, at 20 requests a second (bursts of 40) allowed:
    the excess is dropped with one ``rate_limited`` error in the first second and one in
    the next, not one per message; the requests let through are served, and once the flood
    stops the session works as before."""
    chat = FakeChat(["Hello."])
    limits = Limits(messages_per_s=20)
    async with serve(Engines(stt=FakeSTT(), llm=chat), limits=limits) as server:
        async with raw(server) as c:
            clear = json.dumps({"type": "input_audio_buffer.clear"})
            bursts, size = 4, 60
            loop = asyncio.get_running_loop()
            start = loop.time()
            sent_at: list[tuple[float, float]] = []  # each burst's first and last send
            for i in range(bursts):
                await asyncio.sleep(max(0.0, start + 0.6 * i - loop.time()))
                first = loop.time() - start
                for _ in range(size):
                    await c.ws.send(clear)
                sent_at.append((first, loop.time() - start))
            span_s = loop.time() - start
            # the timing the expectations rest on (a machine too slow for it fails here)
            on_time = all(a - 0.6 * i <= 0.1 and b - a <= 0.05 for i, (a, b) in enumerate(sent_at))
            assert on_time, sent_at
            await asyncio.sleep(1.5)  # the bucket fills again
            await c.send({"type": "session.update", "session": {}})
            events = await c.until("session.updated", 30)
            errors = [e["error"] for e in events if e["type"] == "error"]
            cleared = sum(e["type"] == "input_audio_buffer.cleared" for e in events)
            # notices: at the first burst's 41st request, then at the first refused one a
            # second or more later (the third burst's); the fourth is 0.6 s after that
            assert [e["code"] for e in errors] == ["rate_limited", "rate_limited"], errors
            # the first burst passes up to 40, the later ones what the pause refilled
            refilled = 20 * sent_at[-1][0]
            assert 40 + refilled - 4 <= cleared <= 40 + 20 * span_s + 1, (cleared, sent_at)
            await c.ask("Hello?")
            done = await c.next("response.done")
            assert done["response"]["status"] == "completed"
            assert chat.prompts[-1][-1] == {"role": "user", "content": "Hello?"}
