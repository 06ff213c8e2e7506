"""``voicegrok connect``'s client: the live loop on this side (microphone and speaker), the
models behind a real ``voicegrok serve`` websocket."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from voicegrok.adapters.console import ConsoleView
from voicegrok.adapters.virtual import VirtualSpeaker, paced_chunks
from voicegrok.assistant import Engines
from voicegrok.audio import load_audio
from voicegrok.config import Settings
from voicegrok.frames import TurnRetracted, UserText
from voicegrok.live import LiveSession
from voicegrok.remote import RATE_HZ, RemoteAssistant, RemoteError, realtime_url
from voicegrok.server.app import RealtimeServer, ServerOptions
from voicegrok.testing import FakeChat, FakeSTT, FakeTTS, FakeVAD, fake_engines

from .conftest import DEMO, silence, tone, wait_for

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


async def microphone(
    speaker: VirtualSpeaker, barge_in_after_s: float
) -> AsyncIterator[npt.NDArray[np.float32]]:
    """A one-second question (a tone: speech to ``FakeVAD``), silence until
    ``barge_in_after_s`` of the answer have been played, a second question (1.5 s) over it,
    then silence; 20 ms chunks at real-time pace."""
    step = RATE // 50
    start = time.perf_counter()
    sent = 0

    async def paced(audio: npt.NDArray[np.float32]) -> AsyncIterator[npt.NDArray[np.float32]]:
        nonlocal sent
        for i in range(0, len(audio), step):
            sent += step
            await asyncio.sleep(max(0.0, start + sent / RATE - time.perf_counter()))
            yield audio[i : i + step]

    async for chunk in paced(np.concatenate([silence(0.5), tone(1.0)])):
        yield chunk
    while speaker.played_bytes < 2 * speaker.sample_rate_hz * barge_in_after_s:
        async for chunk in paced(silence(0.02)):
            yield chunk
    async for chunk in paced(np.concatenate([tone(1.5), silence(60.0)])):
        yield chunk


def listening_fakes(chat: FakeChat) -> Engines:
    """Scripted engines with a VAD: the first question (1 s) says "Tell me a story.", the
    second (1.5 s) "Stop."."""
    stt = FakeSTT(by_length=[(1.6, "Tell me a story."), (60.0, "Stop.")])
    engines = fake_engines(stt=stt, llm=chat, tts=FakeTTS())
    engines.vad = FakeVAD()
    return engines


async def test_speaking_over_an_answer_through_the_server_stops_it() -> None:
    """``connect``'s live loop: a question is answered by the server and played here; a
    second question spoken over the answer stops its playback here and its generation on
    the server, the interruption is marked (in the view and in the turn's metrics), and
    the second question is answered."""
    clauses = " ".join(f"This is sentence number {i} of a long story." for i in range(40))
    chat = FakeChat([clauses, "Stopped."], token_delay_s=0.05)
    engines = listening_fakes(chat)
    story_s = len(clauses) * 0.01  # FakeTTS: 10 ms a character (about 17 s)
    out = io.StringIO()
    rows: list[dict[str, object]] = []
    async with (
        RealtimeServer(engines, Settings(), ServerOptions(port=0)) as server,
        RemoteAssistant(f"ws://127.0.0.1:{server.port}") as remote,
    ):
        speaker = VirtualSpeaker(RATE_HZ)
        session = LiveSession(remote, speaker, ConsoleView(out), on_metrics=rows.append)
        run = asyncio.create_task(session.run(microphone(speaker, 0.5), RATE))
        try:
            await wait_for(lambda: session.interruptions == 1, 30)
            await wait_for(lambda: speaker.buffered_s == 0, 0.5)  # playback stopped
            await wait_for(lambda: len(rows) == 2, 30)  # the second question answered
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    assert chat.stopped_early == 1, "the answer's generation stopped on the server"
    assert [row["interrupted"] for row in rows] == [True, False], rows
    text = out.getvalue()
    assert text.count("(interrupted)") == 1 and "Stopped." in text, text
    assert text.index("(interrupted)") < text.index("you: Stop."), text
    played_s = len(speaker.recording) / 2 / RATE_HZ
    assert played_s < story_s / 4, f"{played_s:.1f} s of a {story_s:.0f} s answer played"
    assert not remote.errors, remote.errors


async def test_the_server_remembers_what_was_played_here_of_an_interrupted_answer() -> None:
    """Interrupted during its second clause, the answer is remembered by the server as far
    as it was played here (its first clause, "Sure,"): the next prompt holds that, not the
    rest the server had made."""
    rest = " ".join(f"word{i}" for i in range(60))  # no comma: a clause of about 4 s
    chat = FakeChat([f"Sure, {rest} end. And more after that.", "Stopped."])
    async with (
        RealtimeServer(listening_fakes(chat), Settings(), ServerOptions(port=0)) as server,
        RemoteAssistant(f"ws://127.0.0.1:{server.port}") as remote,
    ):
        speaker = VirtualSpeaker(RATE_HZ)
        session = LiveSession(remote, speaker)
        run = asyncio.create_task(session.run(microphone(speaker, 0.5), RATE))
        try:
            await wait_for(lambda: len(chat.prompts) == 2, 30)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    assert session.interruptions == 1
    assert chat.prompts[1][1:] == [
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": "Sure,"},
        {"role": "user", "content": "Stop."},
    ]


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


@pytest.mark.parametrize("hears_over_speaker", [True, False], ids=["converged", "converging"])
async def test_the_server_hears_whether_connects_microphone_is_deaf_over_its_speaker(
    hears_over_speaker: bool,
) -> None:
    """``connect``'s echo canceller, still learning, mutes its microphone while the speaker
    plays: the server is told (``session.update``, voicegrok's own field), so an answer
    ready at a pause waits for the end of the turn, as in ``talk``. A statement, a 420 ms
    pause, then more words: heard over the speaker, the statement is answered at the pause
    and withdrawn when the person goes on; deaf, only the whole turn is answered."""
    stt = FakeSTT(
        by_length=[(1.7, "I'd like to visit New York."), (9, "I'd like to visit New York today.")]
    )
    engines = fake_engines(stt=stt, llm=FakeChat(["Sure."]), tts=FakeTTS())
    engines.vad = FakeVAD()
    audio = np.concatenate([silence(0.5), tone(1.0), silence(0.42), tone(0.6), silence(3.0)])
    seen: list[object] = []

    def said() -> list[str]:
        return [f.text for f in seen if isinstance(f, UserText) and f.final]

    async with (
        RealtimeServer(engines, Settings(), ServerOptions(port=0)) as server,
        RemoteAssistant(f"ws://127.0.0.1:{server.port}") as remote,
    ):
        session = LiveSession(
            remote,
            VirtualSpeaker(RATE_HZ),
            view=seen.append,
            hears_over_speaker=lambda: hears_over_speaker,
        )
        run = asyncio.create_task(session.run(paced_chunks(audio, RATE), RATE))
        try:
            await wait_for(lambda: any("today" in t for t in said()), 30)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
    retracted = [f for f in seen if isinstance(f, TurnRetracted)]
    if hears_over_speaker:
        assert said() == ["I'd like to visit New York.", "I'd like to visit New York today."]
        assert retracted, seen
    else:
        assert said() == ["I'd like to visit New York today."] and not retracted, seen
    assert not remote.errors, remote.errors
