"""The assistant on another machine: :class:`RemoteAssistant` speaks the Realtime API to a
``voicegrok serve`` (or any server that speaks it) and looks like a local
:class:`~voicegrok.assistant.Assistant` in listening mode, so the live loop and the
terminal UI run unchanged with the local microphone and speaker (``voicegrok connect``).

Server events become the same frames the local pipeline makes; the server does voice
activity, end of turn, speech-to-text, the LLM and speech.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from .audio import REALTIME_RATE_HZ, StreamResampler, float_to_pcm16, resample
from .errors import VoicegrokError, first_line
from .frames import Frame
from .protocol import realtime as rt
from .protocol.decoder import EventDecoder
from .turns import Forget, KeepHeard

__all__ = ["RATE_HZ", "RemoteAssistant", "RemoteError", "realtime_url"]

log = logging.getLogger(__name__)

RATE_HZ = REALTIME_RATE_HZ
"""Audio both ways (the Realtime API's default)."""


class RemoteError(VoicegrokError):
    """The server cannot be reached or refused us."""


def realtime_url(address: str) -> str:
    """``ws://host:port`` (or ``host:port``, ``http(s)://...``) as the Realtime endpoint."""
    if "://" not in address:
        address = "ws://" + address
    parts = urlsplit(address)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss") or not parts.netloc:
        raise RemoteError(f"not a server address: {address!r}; use ws://HOST:PORT")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1/realtime"):
        path += "/v1/realtime"
    return urlunsplit((scheme, parts.netloc, path, parts.query, ""))


class _RemoteConversation:
    """What the live loop may do to the history: start over (a new server session)."""

    def __init__(self, owner: RemoteAssistant) -> None:
        self._owner = owner

    def reset(self) -> None:
        self._owner.new_session()


class RemoteAssistant:
    """Use ``async with RemoteAssistant(url, token) as assistant:`` as you would an
    ``Assistant`` in listening mode: ``hear``, ``push_text``, ``frames``..."""

    stops_answers_itself = True
    """The server stops an answer as soon as speech comes over it (its client cannot
    resume one the server has cancelled): see :class:`~voicegrok.live.LiveSession`."""

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = realtime_url(url)
        self.token = token
        self.conversation = _RemoteConversation(self)
        self.session: rt.Session | None = None
        self._ws: ClientConnection | None = None
        self._decoder = EventDecoder(RATE_HZ)
        """Server events -> frames; knows the response in progress and its items."""
        self._resampler = StreamResampler(RATE_HZ, np.float32)
        self._reopening: asyncio.Task[None] | None = None
        self._hears_over_speaker = True
        """What the server was last told of it (see :meth:`hear`)."""

    @property
    def errors(self) -> list[str]:
        """Errors the server sent (shown by the UI, kept for tests)."""
        return self._decoder.errors

    async def __aenter__(self) -> RemoteAssistant:
        await self._open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def _open(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        try:
            self._ws = await connect(
                self.url, additional_headers=headers, max_size=None, open_timeout=10
            )
        except InvalidStatus as e:
            code = e.response.status_code
            why = "wrong or missing token (--token)" if code == 401 else f"HTTP {code}"
            raise RemoteError(f"{self.url} refused the connection: {why}") from None
        except (OSError, InvalidURI, TimeoutError) as e:
            raise RemoteError(
                f"cannot reach {self.url} ({first_line(e) or type(e).__name__}): "
                "is voicegrok serve running there?"
            ) from None
        first = rt.parse_server_event(await self._ws.recv())
        if isinstance(first, rt.ErrorEvent):
            await self._ws.close()
            raise RemoteError(f"{self.url}: {first.error.message}")
        if isinstance(first, rt.SessionCreated):
            self.session = first.session
        self._decoder.new_session()  # a new session's stream starts at 0
        audio = rt.AudioConfig(
            input=rt.AudioInput(format=rt.AudioFormat(rate=RATE_HZ)),
            output=rt.AudioOutput(format=rt.AudioFormat(rate=RATE_HZ)),
        )
        session = (  # (hears_over_speaker only when false: other servers need not know it)
            rt.Session(audio=audio)
            if self._hears_over_speaker
            else rt.Session(audio=audio, hears_over_speaker=False)
        )
        await self._ws.send(rt.encode(rt.SessionUpdate(session=session)))

    def new_session(self) -> None:
        """Forget the conversation: what is sent from now on goes to a fresh server session."""
        if self._reopening is None or self._reopening.done():
            self._reopening = asyncio.get_running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        old = self._ws
        await self._open()
        if old is not None:
            await old.close()

    async def _send(self, event: Any) -> None:
        if self._reopening is not None and not self._reopening.done():
            await asyncio.shield(self._reopening)
        if self._ws is None:
            return
        with contextlib.suppress(ConnectionClosed):  # the reader notices and reports it
            await self._ws.send(rt.encode(event))

    # ------------------------------------------------------------------ commands

    async def hear(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        *,
        hears_over_speaker: bool = True,
    ) -> None:
        """Send microphone audio to the server, whose listener decides the turns.
        ``hears_over_speaker`` (false while this side's echo canceller still learns and
        mutes the microphone when the speaker plays) is told to the server with a
        ``session.update`` of voicegrok's own field whenever it changes: an answer ready
        at a pause then waits for the end of the turn, as in ``talk``."""
        if hears_over_speaker != self._hears_over_speaker:
            self._hears_over_speaker = hears_over_speaker
            told = rt.Session(hears_over_speaker=hears_over_speaker)
            await self._send(rt.SessionUpdate(session=told))
        samples = self._resampler(samples, sample_rate_hz)
        if len(samples):
            await self._send(rt.InputAudioBufferAppend(audio=float_to_pcm16(samples)))
            self._decoder.sent_audio(len(samples) / RATE_HZ, time.perf_counter())

    async def push_text(self, text: str) -> int:
        await self._cancel()
        self._decoder.typed(text)
        await self._send(
            rt.ConversationItemCreate(
                item=rt.Item(content=[rt.ContentPart(type="input_text", text=text)])
            )
        )
        await self._send(rt.ResponseCreate())
        return self._decoder.turn + 1

    async def push_audio(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        speech_end_s: float | None = None,
    ) -> int:
        """Push-to-talk: the server's turn detection is paused while this utterance is
        committed by hand and answered."""
        await self._cancel()
        audio = resample(samples, sample_rate_hz, RATE_HZ)
        off = rt.Session(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=None)))
        await self._send(rt.SessionUpdate(session=off))
        pcm = float_to_pcm16(audio)
        step = 2 * RATE_HZ * 10  # 10 s per message: well under any message limit
        for i in range(0, len(pcm), step):
            await self._send(rt.InputAudioBufferAppend(audio=pcm[i : i + step]))
        self._decoder.committed_by_hand(time.perf_counter())
        await self._send(rt.InputAudioBufferCommit())
        await self._send(rt.ResponseCreate())
        on = rt.Session(
            audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=rt.TurnDetection()))
        )
        await self._send(rt.SessionUpdate(session=on))
        return self._decoder.turn + 1

    async def end_turn(self, turn_id: int, reason: str) -> None:
        """Stop the answer of ``turn_id`` if the server is still making it."""
        if turn_id == self._decoder.turn:
            await self._cancel()

    async def edit_history(self, turn_id: int, edit: KeepHeard | Forget) -> None:
        """Tell the server what was heard of the answer (``conversation.item.truncate``),
        so its history keeps only that. A forgotten turn was withdrawn by the server
        itself (``conversation.item.deleted``): nothing to say."""
        item_id = self._decoder.answer_items.get(turn_id)
        if isinstance(edit, Forget) or item_id is None or edit.heard_s is None:
            return
        audio_end_ms = int(edit.heard_s * 1000)  # down: never past what the server sent
        await self._send(
            rt.ConversationItemTruncate(
                item_id=item_id, content_index=0, audio_end_ms=max(0, audio_end_ms)
            )
        )

    async def _cancel(self) -> None:
        if self._decoder.response_id is not None:
            await self._send(rt.ResponseCancel(response_id=self._decoder.response_id))

    # ------------------------------------------------------------------ frames

    async def frames(self) -> AsyncIterator[Frame]:
        """The conversation's frames, made from the server's events, until it closes."""
        while True:
            ws = self._ws
            assert ws is not None
            try:
                async for message in ws:
                    try:
                        event = rt.parse_server_event(message)
                    except rt.ProtocolError as e:
                        log.warning("unreadable server event: %s", e.message)
                        continue
                    for frame in self._decoder.frames_of(event):
                        yield frame
            except ConnectionClosed:
                pass
            if self._reopening is not None:
                await asyncio.shield(self._reopening)  # a new session replaced this one
            if self._ws is ws:
                raise RemoteError(f"the server closed the connection ({self.url})")
