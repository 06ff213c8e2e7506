"""The live conversation on this machine: ``talk`` (printed) and ``ui`` (the terminal UI);
also the printed loop that ``connect --console`` shares."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..adapters.console import ConsoleView
from ..adapters.devices import open_devices
from ..adapters.keeper import DeviceKeeper
from ..assistant import Assistant
from ..audio import DEFAULT_OUTPUT_RATE_HZ
from ..config import Settings
from ..errors import VoicegrokError
from ..live import LiveAssistant, LiveSession
from ..tools.timers import Timers
from ..userconfig import UserConfig
from .common import load, mcp_connected, user_config
from .history import kept_conversation

__all__ = ["cmd_talk", "cmd_ui", "live_console"]


async def cmd_talk(args: argparse.Namespace, settings: Settings) -> int:
    from ..endpointing import EndpointConfig

    config, _ = user_config(args)
    config = config.with_flags(greeting=args.greeting)
    settings = replace(
        settings,
        llm_model=settings.llm_model or config.llm_model,
        voice=settings.voice or config.voice,
        stt_model=settings.stt_model or config.stt_model,
    )
    conversation, recorder = kept_conversation(args, settings, "talk")
    try:
        engines = load(settings, args, vad=True)
        end_silence_ms = args.end_silence_ms or config.end_silence_ms
        unsure_end_ms = args.end_silence_ms or config.unsure_end_ms  # asked for: in doubt too
        timers = Timers()  # kept by every assistant of the session (one is made anew
        # when a device comes back)
        endpointing = EndpointConfig(
            end_silence_ms=end_silence_ms, unsure_end_ms=unsure_end_ms, pause_ms=args.pause_ms
        )
        try:
            async with mcp_connected(config, engines):
                return await live_console(
                    config,
                    lambda: Assistant(
                        engines, settings, conversation, endpointing, realtime=True, timers=timers
                    ),
                    engines.tts.sample_rate_hz if engines.tts else DEFAULT_OUTPUT_RATE_HZ,
                    echo_cancel=args.echo_cancel,
                    metrics=args.metrics,
                    on_metrics=recorder.metrics if recorder is not None else None,
                    after_turn=engines.between_turns,
                )
        finally:
            engines.close()
    finally:
        if recorder is not None:
            recorder.history.close()


async def live_console(
    config: UserConfig,
    assistant: Callable[[], contextlib.AbstractAsyncContextManager[LiveAssistant]],
    speaker_rate_hz: int,
    *,
    echo_cancel: bool,
    metrics: Path | None,
    on_metrics: Callable[[dict[str, object]], None] | None = None,
    after_turn: Callable[[], object] | None = None,
) -> int:
    """The live loop in a terminal (``talk``, ``connect --console``): microphone in,
    speaker out, the conversation printed, until Ctrl+C. A device that cannot be opened is
    a one-line error."""
    async with assistant() as live:  # first: a server that cannot be reached says so
        devices = open_devices(
            listen=True,
            speaker_rate_hz=speaker_rate_hz,
            input_device=config.input_device,
            output_device=config.output_device,
            echo_cancel=echo_cancel,
            required=True,
        )
        # Installed after the audio streams are open: native audio libraries may replace
        # the SIGINT handler, and Ctrl+C (or SIGTERM) must always end the conversation.
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
                loop.add_signal_handler(sig, stop.set)
        keeper = DeviceKeeper(
            devices,
            listen=True,
            speaker_rate_hz=speaker_rate_hz,
            input_device=config.input_device,
            output_device=config.output_device,
            echo_cancel=echo_cancel,
            notify=lambda line: print(f"({line})", flush=True),
        )
        try:
            keeper.start()
            assert devices.mic and devices.speaker and devices.chunks is not None
            session = LiveSession(
                live,
                keeper.speaker,
                ConsoleView(sys.stdout),
                metrics,
                on_metrics,
                after_turn=after_turn,
                figures=keeper.echo_figures,
                hears_over_speaker=keeper.hears_over_speaker,
                greeting=config.greeting,
                after_greeting=keeper.relearn_echo,
            )
            mic_name, echo_on = devices.mic.name, devices.canceller is not None

            def listening() -> None:  # (after the greeting, if one is said)
                print(
                    f"voicegrok is listening on {mic_name!r} (Ctrl+C to stop). "
                    + (
                        "Echo cancellation is on."
                        if echo_on
                        else "Echo cancellation is off: use a headset."
                    ),
                    file=sys.stderr,
                    flush=True,
                )

            running = asyncio.create_task(
                session.run(keeper.chunks(), keeper.sample_rate_hz, ready=listening)
            )
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            for task in (running, stopping):
                task.cancel()
            results = await asyncio.gather(running, stopping, return_exceptions=True)
            print(
                f"\nbye: {session.turns_done} turns, {session.interruptions} interruptions",
                file=sys.stderr,
            )
            for result in results:
                if isinstance(result, VoicegrokError):
                    raise result
        finally:
            keeper.close()
    return 0


async def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from ..ui import LocalBackend, VoicegrokApp

    config, path = user_config(args)
    config = config.with_flags(greeting=args.greeting)
    conversation, recorder = kept_conversation(args, settings, "ui")
    app = VoicegrokApp(
        settings,
        config,
        config_path=path,
        backend=LocalBackend(echo_cancel=args.echo_cancel, mcp=config.mcp),
        metrics_path=args.metrics,
        conversation=conversation,
        recorder=recorder,
    )
    try:
        await app.run_async()
    finally:
        if recorder is not None:
            recorder.history.close()
    return 0
