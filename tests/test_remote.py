"""``voicegrok connect``'s client: the live loop on this side (microphone and speaker), the
models behind a real ``voicegrok serve`` websocket."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import numpy as np
import pytest

from voicegrok.adapters.console import ConsoleView
from voicegrok.adapters.virtual import VirtualSpeaker, paced_chunks
from voicegrok.assistant import Engines
from voicegrok.audio import load_audio
from voicegrok.config import Settings
from voicegrok.live import LiveSession
from voicegrok.remote import RATE_HZ, RemoteAssistant, RemoteError, realtime_url
from voicegrok.server.app import RealtimeServer, ServerOptions

from .conftest import DEMO, wait_for

RATE = 16000


async def test_a_spoken_then_a_typed_question_through_the_server(
    listening: Engines, tmp_path: Path
) -> None:
    """The local loop hears a question at real-time pace; the server transcribes and
    answers it; the answer is printed and played here; a typed question follows."""
    question = load_audio(str(DEMO / "turn3.wav"), RATE)
    mic = np.concatenate(
        [np.zeros(RATE // 2, np.float32), question, np.zeros(RATE * 60, np.float32)]
    )
    out = io.StringIO()
    async with (
        RealtimeServer(listening, Settings(), ServerOptions(port=0)) as server,
        RemoteAssistant(f"ws://127.0.0.1:{server.port}") as remote,
    ):
        speaker = VirtualSpeaker(RATE_HZ)
        session = LiveSession(remote, speaker, ConsoleView(out), tmp_path / "m.jsonl")
        run = asyncio.create_task(session.run(paced_chunks(mic, RATE), RATE))
        try:
            await wait_for(lambda: session.turns_done >= 1)
            await wait_for(lambda: not session.answering)  # played out
            await session.ask("What is the capital of France?")
            await wait_for(lambda: session.turns_done >= 2)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    text = out.getvalue()
    assert "you: " in text and "cost" in text.lower(), text
    assert "Paris" in text, text
    assert len(speaker.recording) / 2 / RATE_HZ > 1.0  # the answers were played here
    rows = (tmp_path / "m.jsonl").read_text().splitlines()
    assert len(rows) == 2 and '"tokens_per_s"' in rows[0], rows
    assert not remote.errors, remote.errors


async def test_new_conversation_starts_a_fresh_server_session(listening: Engines) -> None:
    async with (
        RealtimeServer(listening, Settings(), ServerOptions(port=0)) as server,
        RemoteAssistant(f"ws://127.0.0.1:{server.port}") as remote,
    ):
        session = LiveSession(remote, VirtualSpeaker(RATE_HZ))
        first = remote.session
        run = asyncio.create_task(session.run(None))
        try:
            await session.new_conversation()
            await session.ask("Say hello.")
            await wait_for(lambda: session.turns_done >= 1)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        assert first is not None and remote.session is not None
        assert remote.session.id != first.id


async def test_a_wrong_token_or_no_server_is_a_one_line_error(listening: Engines) -> None:
    async with RealtimeServer(listening, Settings(), ServerOptions(port=0, token="t0k")) as server:
        with pytest.raises(RemoteError, match="token"):
            async with RemoteAssistant(f"ws://127.0.0.1:{server.port}", "wrong"):
                pass
        async with RemoteAssistant(f"127.0.0.1:{server.port}", "t0k") as remote:
            assert remote.session is not None
        port = server.port
    with pytest.raises(RemoteError, match="voicegrok serve"):
        async with RemoteAssistant(f"ws://127.0.0.1:{port}"):
            pass


def test_server_addresses_are_normalised() -> None:
    assert realtime_url("localhost:8765") == "ws://localhost:8765/v1/realtime"
    assert realtime_url("https://box.lan/") == "wss://box.lan/v1/realtime"
    assert realtime_url("ws://h:1/v1/realtime?token=x") == "ws://h:1/v1/realtime?token=x"
    with pytest.raises(RemoteError):
        realtime_url("ftp://nope")
