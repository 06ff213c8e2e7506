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
import itertools
import logging
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import numpy.typing as npt
import soxr
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from .errors import VoicegrokError, first_line
from .frames import (
    Frame,
    Interrupt,
    LLMToken,
    SpeechStarted,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from .protocol import realtime as rt

__all__ = ["RATE_HZ", "RemoteAssistant", "RemoteError", "realtime_url"]

log = logging.getLogger(__name__)

RATE_HZ = 24000
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

    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = realtime_url(url)
        self.token = token
        self.conversation = _RemoteConversation(self)
        self.session: rt.Session | None = None
        self._ws: ClientConnection | None = None
        self._ids = itertools.count(1)
        self._turn = 0
        self._response_id: str | None = None
        self._speech_turn = 0
        self._speech_end_s: float | None = None
        self._sent_s = 0.0
        """Seconds of microphone audio sent to this server session (its stream position)."""
        self._sent_at = 0.0
        """``perf_counter()`` when the latest of it was sent (it had just been captured)."""
        self._typed: str | None = None
        self._user_item: str | None = None
        self._partial = ""
        self._tokens = 0
        self._resampler: Any = None
        self._resampler_rate = 0
        self._reopening: asyncio.Task[None] | None = None
        self.errors: list[str] = []
        """Errors the server sent (shown by the UI, kept for tests)."""

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
        self._sent_s = 0.0  # a new session's stream starts at 0
        await self._ws.send(
            rt.encode(
                rt.SessionUpdate(
                    session=rt.Session(
                        audio=rt.AudioConfig(
                            input=rt.AudioInput(format=rt.AudioFormat(rate=RATE_HZ)),
                            output=rt.AudioOutput(format=rt.AudioFormat(rate=RATE_HZ)),
                        )
                    )
                )
            )
        )

    def new_session(self) -> None:
        """Forget the conversation: what is sent from now on goes to a fresh server session."""
        if self._reopening is None or self._reopening.done():
            self._reopening = asyncio.get_running_loop().create_task(self._reopen())

    async def _reopen(self) -> None:
        old = self._ws
        self._response_id = None
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

    async def hear(self, samples: npt.NDArray[np.float32], sample_rate_hz: int) -> None:
        if sample_rate_hz != RATE_HZ:
            if self._resampler is None or self._resampler_rate != sample_rate_hz:
                self._resampler = soxr.ResampleStream(sample_rate_hz, RATE_HZ, 1, dtype="float32")
                self._resampler_rate = sample_rate_hz
            samples = self._resampler.resample_chunk(samples)
        if len(samples):
            pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
            await self._send(rt.InputAudioBufferAppend(audio=pcm))
            self._sent_s += len(samples) / RATE_HZ
            self._sent_at = time.perf_counter()

    async def push_text(self, text: str) -> int:
        await self._cancel()
        self._typed = text
        await self._send(
            rt.ConversationItemCreate(
                item=rt.Item(content=[rt.ContentPart(type="input_text", text=text)])
            )
        )
        await self._send(rt.ResponseCreate())
        return self._turn + 1

    async def push_audio(
        self,
        samples: npt.NDArray[np.float32],
        sample_rate_hz: int,
        speech_end_s: float | None = None,
    ) -> int:
        """Push-to-talk: the server's turn detection is paused while this utterance is
        committed by hand and answered."""
        await self._cancel()
        audio = (
            soxr.resample(samples, sample_rate_hz, RATE_HZ)
            if sample_rate_hz != RATE_HZ
            else samples
        )
        off = rt.Session(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=None)))
        await self._send(rt.SessionUpdate(session=off))
        pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
        step = 2 * RATE_HZ * 10  # 10 s per message: well under any message limit
        for i in range(0, len(pcm), step):
            await self._send(rt.InputAudioBufferAppend(audio=pcm[i : i + step]))
        self._speech_end_s = time.perf_counter()
        await self._send(rt.InputAudioBufferCommit())
        await self._send(rt.ResponseCreate())
        on = rt.Session(
            audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=rt.TurnDetection()))
        )
        await self._send(rt.SessionUpdate(session=on))
        return self._turn + 1

    async def barge_in(self, turn_id: int, spoken: str) -> None:
        """Stop the answer (the server keeps the text it generated in its history)."""
        await self._cancel()

    async def retract(self, turn_id: int, user_text: str | None) -> None:
        """The server withdraws early answers itself."""

    async def _cancel(self) -> None:
        if self._response_id is not None:
            await self._send(rt.ResponseCancel(response_id=self._response_id))

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
                    for frame in self._frames_of(event):
                        yield frame
            except ConnectionClosed:
                pass
            if self._reopening is not None:
                await asyncio.shield(self._reopening)  # a new session replaced this one
            if self._ws is ws:
                raise RemoteError(f"the server closed the connection ({self.url})")

    def _frames_of(self, event: Any) -> list[Frame]:
        now = time.perf_counter()
        turn = self._turn
        if isinstance(event, rt.SpeechStarted):
            self._speech_turn = next(self._ids)
            self._partial = ""
            return [
                SpeechStarted(turn_id=self._speech_turn, audio_start_s=event.audio_start_ms / 1000)
            ]
        if isinstance(event, rt.SpeechStopped):
            # the server reports where in our stream the speech ended: its time here
            behind_s = max(0.0, self._sent_s - event.audio_end_ms / 1000)
            self._speech_end_s = min(now, self._sent_at - behind_s) if self._sent_at else now
            return []
        if isinstance(event, rt.Committed):
            self._user_item = event.item_id
            return []
        if isinstance(event, rt.ItemDeleted):
            if event.item_id != self._user_item:
                return []
            # the answer started at a pause is withdrawn: the person is still speaking
            self._user_item = None
            return [TurnRetracted(turn_id=turn)]
        if isinstance(event, rt.ResponseCreated):
            self._turn = turn = max(next(self._ids), self._speech_turn)
            self._response_id = event.response.id
            self._tokens = 0
            typed, self._typed = self._typed, None
            end = now if typed is not None or self._speech_end_s is None else self._speech_end_s
            self._speech_end_s = None
            frames: list[Frame] = [
                TurnStarted(turn_id=turn, speech_end_s=end, source="text" if typed else "speech")
            ]
            if typed is not None:
                frames.append(UserText(turn_id=turn, text=typed, source="text"))
            return frames
        if isinstance(event, rt.TranscriptionDelta):
            self._partial += event.delta
            return [UserText(turn_id=self._speech_turn, text=self._partial, final=False)]
        if isinstance(event, rt.TranscriptionCompleted):
            return [UserText(turn_id=turn, text=event.transcript)]
        if isinstance(event, (rt.AudioTranscriptDelta, rt.TextDelta)):
            if event.response_id != self._response_id:
                return []
            self._tokens += 1
            return [LLMToken(turn_id=turn, text=event.delta, index=self._tokens - 1)]
        if isinstance(event, rt.AudioDelta):
            if event.response_id != self._response_id:
                return []
            return [TTSAudio(turn_id=turn, pcm=event.delta, sample_rate_hz=RATE_HZ, clause_index=0)]
        if isinstance(event, rt.ResponseDone):
            if event.response.id != self._response_id:
                return []
            status = event.response.status
            if status == "completed":
                return []  # the metrics event follows (or, from other servers, nothing)
            self._response_id = None
            if status == "cancelled":
                return [Interrupt(turn_id=turn)]
            return [TurnFailed(turn_id=turn, message=f"the answer {status}", stage="server")]
        if isinstance(event, rt.Metrics):
            self._response_id = None
            m = event.metrics
            try:
                return [
                    TurnMetrics(
                        turn_id=turn,
                        source=str(m.get("source", "speech")),
                        stt_ms=m.get("stt_ms"),
                        llm_first_token_ms=m.get("llm_first_token_ms"),
                        tts_first_audio_ms=m.get("tts_first_audio_ms"),
                        first_audio_ms=m.get("first_audio_ms"),
                        total_ms=float(m.get("total_ms") or 0.0),
                        tokens_per_s=float(m.get("tokens_per_s") or 0.0),
                        n_tokens=int(m.get("n_tokens") or 0),
                        clauses=int(m.get("clauses") or 0),
                        audio_s=float(m.get("audio_s") or 0.0),
                    )
                ]
            except (TypeError, ValueError):
                return []
        if isinstance(event, rt.ErrorEvent):
            info = event.error
            if info.code != "response_cancel_not_active":  # a cancel that crossed the end
                self.errors.append(info.message)
                log.warning("server error %s: %s", info.code, info.message)
        return []
