"""The models on one machine, the devices on another: ``serve`` and ``connect``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys

from ..config import Settings
from ..errors import UsageError
from ..history import History
from ..userconfig import load_user_config
from .common import load, mcp_connected, user_config
from .live import live_console

__all__ = ["cmd_connect", "cmd_serve"]


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ..server.app import RealtimeServer, ServerOptions, is_loopback
    from ..server.session import Limits

    token = args.token or os.environ.get("VOICEGROK_TOKEN") or None
    if not is_loopback(args.host) and not token:
        raise UsageError(
            f"--host {args.host} lets other machines connect: set a token with --token "
            "or the VOICEGROK_TOKEN environment variable"
        )
    if bool(args.certfile) != bool(args.keyfile):
        raise UsageError("--certfile and --keyfile go together")
    for f in (args.certfile, args.keyfile):
        if f is not None and not f.is_file():
            raise UsageError(f"no such file: {f}")
    limits = Limits(
        max_sessions=args.max_sessions,
        idle_timeout_s=args.idle_timeout,
        max_message_bytes=args.max_message_kb * 1024,
    )
    options = ServerOptions(
        host=args.host,
        port=args.port,
        token=token,
        allowed_origins=tuple(args.allow_origin or ()),
        certfile=str(args.certfile) if args.certfile else None,
        keyfile=str(args.keyfile) if args.keyfile else None,
        limits=limits,
    )
    history = History() if args.history else None
    config = load_user_config(args.config)
    engines = load(settings, args, vad=True, sessions=args.max_sessions)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        tools = contextlib.AsyncExitStack()
        await tools.enter_async_context(mcp_connected(config, engines))
        try:
            server = RealtimeServer(engines, settings, options, history=history)
            await server.__aenter__()
        except OSError as e:
            raise UsageError(
                f"cannot listen on {args.host}:{args.port} ({e.strerror or e}): "
                "is another server running there? pick another --port"
            ) from None
        scheme = "https" if args.certfile else "http"
        shown = f"{args.host}:{server.port}"
        print(
            f"voicegrok is serving on {scheme}://{shown}/ (browser client) and "
            f"{'wss' if args.certfile else 'ws'}://{shown}/v1/realtime (Realtime API); "
            "Ctrl+C to stop",
            file=sys.stderr,
            flush=True,
        )
        try:
            await stop.wait()
        finally:
            await server.__aexit__(None, None, None)
            await tools.aclose()
    finally:
        engines.close()
        if history is not None:
            history.close()
    return 0


async def cmd_connect(args: argparse.Namespace, settings: Settings) -> int:
    from ..remote import RATE_HZ, RemoteAssistant, realtime_url

    url = realtime_url(args.url)
    token = args.token or os.environ.get("VOICEGROK_TOKEN") or None
    config, path = user_config(args)
    if args.console or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return await live_console(
            config,
            lambda: RemoteAssistant(url, token),
            RATE_HZ,
            echo_cancel=args.echo_cancel,
            metrics=args.metrics,
        )
    from ..ui import RemoteBackend, VoicegrokApp

    app = VoicegrokApp(
        settings,
        config,
        config_path=path,
        backend=RemoteBackend(url, token, echo_cancel=args.echo_cancel),
    )
    await app.run_async()
    return 0
