"""Shared fixtures and helpers: the real embedded models (loaded once), a CLI runner, test
audio, and clients of a real ``voicegrok serve`` (``RealtimeServer`` on port 0)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State

from voicegrok import models
from voicegrok.assistant import Engines, load_engines
from voicegrok.choice import ENV
from voicegrok.config import Settings
from voicegrok.history import History
from voicegrok.server.app import RealtimeServer, ServerOptions
from voicegrok.text import words as text_words

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data"
DEMO = ROOT / "assets" / "demo"


@pytest.fixture(scope="session", autouse=True)
def private_data_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Conversations kept by the commands the tests run (and their children) go to a
    folder of the test session's, never to the user's own history."""
    folder = tmp_path_factory.mktemp("voicegrok-data")
    before = os.environ.get("VOICEGROK_DATA_DIR")
    os.environ["VOICEGROK_DATA_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("VOICEGROK_DATA_DIR", None)
    else:
        os.environ["VOICEGROK_DATA_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def fast_llm() -> Iterator[None]:
    """The suite talks to the embedded SmolLM2-135M (fast on any machine), in this process
    and the commands it runs, unless a test names another; the tests of the default choice
    (``auto``, test_choice) take this away."""
    before = os.environ.get(ENV)
    os.environ[ENV] = "smollm2-135m"
    yield
    if before is None:
        os.environ.pop(ENV, None)
    else:
        os.environ[ENV] = before


@pytest.fixture(scope="session")
def engines() -> Iterator[Engines]:
    """The real default models, loaded and warmed once for the whole session."""
    e = load_engines(Settings())
    yield e
    e.close()


def engines_with_vad(e: Engines) -> Engines:
    """The same loaded engines plus the Silero VAD and the end-of-turn model (listening
    mode)."""
    from voicegrok.engines.silero import SileroVAD
    from voicegrok.engines.smart_turn import SmartTurn

    return dataclasses.replace(
        e, vad=SileroVAD(models.resolve("vad")), turn=SmartTurn(models.resolve("turn"))
    )


@pytest.fixture(scope="session")
def listening(engines: Engines) -> Engines:
    """The real models in listening mode (what ``voicegrok serve`` loads)."""
    return engines_with_vad(engines)


@dataclass
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(tmp_path: Path) -> object:
    """Run ``voicegrok ARGS`` in a subprocess, as a user would (no sound device needed)."""

    def run(*args: str, timeout: float = 300) -> Run:
        env = dict(os.environ, VOICEGROK_MODELS_DIR=str(tmp_path / "models"))
        p = subprocess.run(
            [sys.executable, "-m", "voicegrok", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
            env=env,
            stdin=subprocess.DEVNULL,
        )
        return Run(p.returncode, p.stdout, p.stderr)

    return run


def words(text: str) -> list[str]:
    """:func:`voicegrok.text.words`, with typographic apostrophes read as plain ones."""
    return text_words(text.replace("’", "'"))


def rss_mb() -> float:
    """This process's resident memory now (MB), from /proc (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


async def wait_for(condition: Callable[[], object], timeout_s: float = 60) -> None:
    """Poll ``condition`` every 50 ms until it is true (AssertionError after ``timeout_s``)."""
    for _ in range(int(timeout_s / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s:g} s")


# ------------------------------------------------------------------------ test audio

FloatAudio = npt.NDArray[np.float32]


def tone(seconds: float, rate: int = 16000) -> FloatAudio:
    """A 220 Hz tone: speech to ``voicegrok.testing.FakeVAD``."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def silence(seconds: float, rate: int = 16000) -> FloatAudio:
    return np.zeros(int(seconds * rate), dtype=np.float32)


def pcm16(audio: FloatAudio) -> bytes:
    """Float samples as 16-bit little-endian PCM (the Realtime API's audio/pcm)."""
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def b64_pcm16(audio: FloatAudio) -> str:
    return base64.b64encode(pcm16(audio)).decode()


def float_audio(pcm: bytes) -> FloatAudio:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768


# ------------------------------------------------------------------------ the server


def serve(
    engines: Engines,
    settings: Settings | None = None,
    history: History | None = None,
    **options: Any,
) -> RealtimeServer:
    """A ``RealtimeServer`` on a free loopback port (``async with``; then ``server.port``)."""
    server_options = ServerOptions(port=0, **options)
    return RealtimeServer(engines, settings or Settings(), server_options, history=history)


def ask_item(text: str) -> dict[str, Any]:
    """A typed user message for ``conversation.item.create``."""
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


@dataclasses.dataclass
class Raw:
    """A plain websocket client of the Realtime API: send anything, read events."""

    ws: ClientConnection

    async def send(self, message: str | dict[str, Any]) -> None:
        await self.ws.send(message if isinstance(message, str) else json.dumps(message))

    async def event(self, timeout_s: float = 60) -> dict[str, Any]:
        """The next server event."""
        async with asyncio.timeout(timeout_s):
            event: dict[str, Any] = json.loads(await self.ws.recv())
            return event

    async def next(self, kind: str, timeout_s: float = 60) -> dict[str, Any]:
        """The next event of type ``kind`` (the others before it are skipped)."""
        async with asyncio.timeout(timeout_s):
            while True:
                event: dict[str, Any] = json.loads(await self.ws.recv())
                if event["type"] == kind:
                    return event

    async def until(self, kind: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Every event up to and including the next one of type ``kind``."""
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout_s):
            while not events or events[-1]["type"] != kind:
                events.append(json.loads(await self.ws.recv()))
        return events

    async def errors(self, n: int, timeout_s: float = 30) -> list[dict[str, Any]]:
        """The next ``n`` errors (their ``error`` objects; other events are skipped)."""
        out = []
        async with asyncio.timeout(timeout_s):
            while len(out) < n:
                event = json.loads(await self.ws.recv())
                if event["type"] == "error":
                    out.append(event["error"])
        return out

    async def ask(self, text: str) -> None:
        """A typed question and ``response.create``."""
        await self.send({"type": "conversation.item.create", "item": ask_item(text)})
        await self.send({"type": "response.create"})


@contextlib.asynccontextmanager
async def raw(
    server: RealtimeServer, query: str = "", *, rcvbuf: int | None = None, **kw: Any
) -> AsyncIterator[Raw]:
    """A connected :class:`Raw` client, past ``session.created``. ``rcvbuf``: the size of
    its socket's receive buffer in bytes (small: the kernel holds little for a client that
    does not read)."""
    url = f"ws://127.0.0.1:{server.port}/v1/realtime{query}"
    if rcvbuf is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        kw["sock"] = sock
    ws = await connect(url, **kw)
    try:
        client = Raw(ws)
        await client.next("session.created")
        yield client
    finally:
        # closing one the server has failed (1009: a message beyond its limit) aborts a
        # transport asyncio has already let go of, in websockets 15: AttributeError
        if ws.state is not State.CLOSED:
            await ws.close()


async def no_sessions(server: RealtimeServer, timeout_s: float = 5) -> None:
    """Wait until the server has ended every session."""
    await wait_for(lambda: not server.sessions, timeout_s)


async def typed_turn(server: RealtimeServer, text: str = "Say hello.") -> dict[str, Any]:
    """A well-behaved session: one typed turn; its ``response.done``."""
    async with raw(server) as client:
        await client.ask(text)
        return await client.next("response.done", timeout_s=120)
