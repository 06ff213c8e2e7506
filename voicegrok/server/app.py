"""``voicegrok serve``: the Realtime API over websockets at ``/v1/realtime``, and the
browser client at ``/`` (static files shipped in the package).

This is the adapter: sockets, HTTP, authentication and limits. What a session does with
the events is :class:`~voicegrok.server.session.RealtimeSession`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import mimetypes
import ssl
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server as WSServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from ..assistant import Engines
from ..config import Settings
from ..history import History
from ..protocol import realtime as rt
from .commands import Limits
from .session import RealtimeSession

__all__ = ["RealtimeServer", "ServerOptions", "is_loopback"]

log = logging.getLogger(__name__)

PATH = "/v1/realtime"
WEB_FILES = ("index.html", "app.js", "worklet.js", "style.css", "favicon.svg")


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    """Required from every client when set (and it must be set off loopback)."""
    allowed_origins: tuple[str, ...] = ()
    """Browser origins allowed besides the server's own page (``*``: any)."""
    certfile: str | None = None
    keyfile: str | None = None
    limits: Limits = field(default_factory=Limits)


class _Bucket:
    """Token bucket: ``rate`` requests per second, bursts of ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class RealtimeServer:
    """Use ``async with RealtimeServer(engines, settings, options) as server:``; the bound
    port is ``server.port`` (pass port 0 for any free one)."""

    def __init__(
        self,
        engines: Engines,
        settings: Settings,
        options: ServerOptions | None = None,
        *,
        model_name: str = "voicegrok",
        voice_name: str = "default",
        history: History | None = None,
    ) -> None:
        """``history``: keep every session's conversation there (``serve --history``)."""
        self.engines = engines
        self.settings = settings
        self.history = history
        self.options = options or ServerOptions()
        if not is_loopback(self.options.host) and not self.options.token:
            raise ValueError(
                f"binding to {self.options.host} lets other machines in: set a token "
                "(--token or VOICEGROK_TOKEN)"
            )
        self.model_name = model_name
        self.voice_name = voice_name
        self.sessions: set[RealtimeSession] = set()
        self._server: WSServer | None = None
        self.port = self.options.port

    async def __aenter__(self) -> RealtimeServer:
        o = self.options
        context = None
        if o.certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(o.certfile, o.keyfile)
        self._server = await serve(
            self._handle,
            o.host,
            o.port,
            process_request=self._process_request,
            max_size=4 * o.limits.max_message_bytes,
            max_queue=64,
            ping_interval=20,
            ping_timeout=20,
            ssl=context,
            server_header="voicegrok",
            compression=None,
        )
        sock = next(iter(self._server.sockets))
        self.port = sock.getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # ------------------------------------------------------------------ HTTP

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path != PATH:
            return self._static(url.path)
        if not self._authorized(request, url.query):
            return _text(HTTPStatus.UNAUTHORIZED, "missing or wrong token")
        origin = request.headers.get("Origin")
        if origin is not None and not self._origin_ok(origin, request.headers.get("Host", "")):
            return _text(HTTPStatus.FORBIDDEN, f"origin {origin} is not allowed")
        return None

    def _authorized(self, request: Request, query: str) -> bool:
        token = self.options.token
        if not token:
            return True
        given = ""
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        else:
            given = (parse_qs(query).get("token") or [""])[0]
        return hmac.compare_digest(given.encode(), token.encode())

    def _origin_ok(self, origin: str, host: str) -> bool:
        allowed = self.options.allowed_origins
        if "*" in allowed or origin in allowed:
            return True
        return urlsplit(origin).netloc == host  # the page this server serves

    def _static(self, path: str) -> Response:
        name = {"/": "index.html", "/favicon.ico": "favicon.svg"}.get(path, path.lstrip("/"))
        if name not in WEB_FILES:
            return _text(HTTPStatus.NOT_FOUND, "not found")
        body = resources.files("voicegrok.web").joinpath(name).read_bytes()
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        headers = Headers(
            [
                ("Content-Type", f"{kind}; charset=utf-8"),
                ("Content-Length", str(len(body))),
                ("Cache-Control", "no-store"),
                ("X-Content-Type-Options", "nosniff"),
                (
                    "Content-Security-Policy",
                    "default-src 'self'; connect-src 'self' ws: wss:; media-src 'self' blob:",
                ),
            ]
        )
        return Response(200, "OK", headers, body)

    # ------------------------------------------------------------------ websocket

    async def _handle(self, ws: ServerConnection) -> None:
        limits = self.options.limits
        if len(self.sessions) >= limits.max_sessions:
            busy = rt.ProtocolError(
                "server_busy",
                f"the server already has {limits.max_sessions} sessions: try again later",
            )
            with contextlib.suppress(ConnectionClosed):
                await ws.send(rt.encode(rt.ErrorEvent.of(busy)))
                await ws.close(1013, "server busy")
            return
        outbox: asyncio.Queue[str | None] = asyncio.Queue()
        pending = [0]

        async def send(event: Any) -> None:
            text = rt.encode(event)
            pending[0] += len(text)
            if pending[0] > limits.max_outbox_bytes:
                # The client does not read: drop it now rather than hold the answer in
                # memory. Not ws.close(): a closing handshake waits for the socket to drain,
                # which a client that does not read never lets happen (nor could it read
                # the close frame); it hung until the next keepalive ping.
                if not ws.transport.is_closing():
                    log.info("dropping a client that does not read (%d bytes wait)", pending[0])
                    ws.transport.abort()
                return
            outbox.put_nowait(text)

        async def writer() -> None:
            while (text := await outbox.get()) is not None:
                await ws.send(text)
                pending[0] -= len(text)

        session = RealtimeSession(
            self.engines,
            self.settings,
            send,
            limits=limits,
            model_name=self.model_name,
            voice_name=self.voice_name,
            history=self.history,
        )
        self.sessions.add(session)
        write_task = asyncio.create_task(writer())
        try:
            await session.start()
            await self._read(ws, session)
        except ConnectionClosed:
            pass
        finally:
            self.sessions.discard(session)
            await session.close()
            write_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                await write_task

    async def _read(self, ws: ServerConnection, session: RealtimeSession) -> None:
        limits = self.options.limits
        bucket = _Bucket(limits.messages_per_s, 2 * limits.messages_per_s)
        warned_at = 0.0
        while True:
            try:
                async with asyncio.timeout(limits.idle_timeout_s):
                    message = await ws.recv()
            except TimeoutError:
                await session.refuse(
                    rt.ProtocolError(
                        "idle_timeout", f"nothing received for {limits.idle_timeout_s:g} s"
                    )
                )
                await asyncio.sleep(0.1)  # let the writer send it
                await ws.close(1000, "idle timeout")
                return
            if not bucket.take():
                now = time.monotonic()
                if now - warned_at >= 1.0:  # one warning a second, not one per message
                    warned_at = now
                    await session.refuse(
                        rt.ProtocolError(
                            "rate_limited",
                            f"more than {limits.messages_per_s:g} requests per second: "
                            "requests are being dropped",
                        )
                    )
                continue
            await session.handle_message(message)


def _text(status: HTTPStatus, message: str) -> Response:
    body = (message + "\n").encode()
    headers = Headers(
        [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return Response(status.value, status.phrase, headers, body)
