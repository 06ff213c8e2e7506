"""The ``voicegrok`` command line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TextIO

from . import __version__, models
from .adapters.speaker import Speaker, default_output_device, parse_device, quiet_alsa
from .adapters.wav import WavSink
from .assistant import Assistant, Engines, load_engines
from .audio import load_audio
from .config import Settings
from .demo import demo_dir as demo_dir  # bench.py imports it from here (until it uses .demo)
from .demo import demo_recordings
from .errors import UsageError, VoicegrokError
from .frames import Frame, Interrupt, LLMToken, TTSAudio, TurnFailed, TurnMetrics, UserText
from .live import LiveAssistant
from .userconfig import UserConfig

MAX_TEXT_CHARS = 8000
"""Longest text accepted by ``ask`` and ``say``."""


# ---------------------------------------------------------------------------- output


@dataclass
class TurnResult:
    transcript: str = ""
    answer: str = ""
    metrics: TurnMetrics | None = None
    failed: str | None = None
    audio: WavSink = field(default_factory=WavSink)


class AudioOut:
    """Where reply audio goes: a WAV file, the speaker, or nowhere (with a note)."""

    def __init__(self, wav: Path | None, speak: bool, rate_hz: int) -> None:
        self.wav = wav
        self.speaker: Speaker | None = None
        self.note: str | None = None
        if wav is None and speak:
            device = default_output_device()
            if device is None:
                self.note = "no audio output device: the answer is not spoken (use --out FILE.wav)"
            else:
                self.speaker = Speaker(rate_hz)

    def feed(self, frame: Frame) -> None:
        if self.speaker is not None and isinstance(frame, TTSAudio):
            self.speaker.play(frame.pcm)
        elif self.speaker is not None and isinstance(frame, Interrupt):
            self.speaker.clear()

    async def finish(self, result: TurnResult) -> str | None:
        """Flush the turn's audio; returns a line to show, if any."""
        if self.speaker is not None:
            await self.speaker.drain()
            return None
        if self.wav is not None:
            result.audio.save(self.wav)
            return f"wrote {self.wav} ({result.audio.duration_s:.1f} s of speech)"
        return None

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()


async def render_turn(
    frames: AsyncIterator[Frame],
    out: TextIO,
    *,
    audio: AudioOut | None = None,
    prefix: str = "",
    show_user: bool = True,
) -> TurnResult:
    """Print a turn as it happens: the transcript, then the answer token by token."""
    result = TurnResult()
    started = False
    async for frame in frames:
        result.audio.feed(frame)
        if audio is not None:
            audio.feed(frame)
        if isinstance(frame, UserText) and frame.final:
            result.transcript = frame.text
            if show_user:
                print(f"you: {frame.text}", file=out, flush=True)
        elif isinstance(frame, LLMToken):
            if not started:
                out.write(prefix)
                started = True
            out.write(frame.text)
            out.flush()
            result.answer += frame.text
        elif isinstance(frame, TurnMetrics):
            result.metrics = frame
        elif isinstance(frame, TurnFailed):
            result.failed = frame.message
        elif isinstance(frame, Interrupt):
            result.failed = f"turn {frame.reason}"
    if started:
        out.write("\n")
        out.flush()
    return result


# ---------------------------------------------------------------------------- commands


def _load(settings: Settings, args: argparse.Namespace, **kinds: bool) -> Engines:
    progress = None if args.quiet else (lambda m: print(f"… {m}", file=sys.stderr, flush=True))
    return load_engines(settings, progress=progress, **kinds)


def _check_text(text: str, what: str) -> str:
    text = text.strip()
    if not text:
        raise UsageError(f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise UsageError(
            f"{what} is too long: {len(text)} characters, at most {MAX_TEXT_CHARS}; "
            "split it into shorter parts"
        )
    return text


def _write_metrics(path: Path | None, metrics: TurnMetrics | None) -> None:
    if path is not None and metrics is not None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(metrics.as_dict()) + "\n")


async def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    text = _check_text(args.text, "the question")
    speak = not args.no_speak
    engines = _load(settings, args, stt=False, tts=speak)
    audio = AudioOut(args.out, speak, engines.tts.sample_rate_hz if engines.tts else 22050)
    try:
        async with Assistant(engines, settings) as assistant:
            result = await render_turn(
                assistant.ask(text), sys.stdout, audio=audio, show_user=False
            )
            done = await audio.finish(result)
    finally:
        audio.close()
        engines.close()
    return _report(result, args, done, audio.note)


def _report(
    result: TurnResult, args: argparse.Namespace, done: str | None, note: str | None
) -> int:
    if result.failed:
        print(f"voicegrok: error: {result.failed}", file=sys.stderr)
        return 1
    m = result.metrics
    if m is not None:
        print(f"[{m.summary()}]", file=sys.stderr)
    for line in (done, note):
        if line:
            print(line, file=sys.stderr)
    _write_metrics(args.metrics, m)
    return 0


async def cmd_reply(args: argparse.Namespace, settings: Settings) -> int:
    samples = load_audio(args.question)  # fails fast, before any model loads
    engines = _load(settings, args)
    out: Path = args.out
    audio = AudioOut(out, True, 22050)
    try:
        async with Assistant(engines, settings) as assistant:
            result = await render_turn(
                assistant.reply(samples, 16000), sys.stdout, audio=audio, prefix="voicegrok: "
            )
            done = await audio.finish(result) if not result.failed else None
    finally:
        engines.close()
    return _report(result, args, done, None)


async def cmd_transcribe(args: argparse.Namespace, settings: Settings) -> int:
    audios = [load_audio(p) for p in args.files]
    engines = _load(settings, args, llm=False, tts=False)
    try:
        assert engines.stt is not None
        for path, samples in zip(args.files, audios, strict=True):
            text = await engines.threads["stt"].call(engines.stt.transcribe, samples)
            print(f"{path}: {text}" if len(args.files) > 1 else text, flush=True)
    finally:
        engines.close()
    return 0


async def cmd_say(args: argparse.Namespace, settings: Settings) -> int:
    from .text import speakable

    text = _check_text(args.text, "the text")
    spoken = speakable(text)
    if not spoken:
        raise UsageError("the text has nothing to say (only symbols)")
    engines = _load(settings, args, stt=False, llm=False)
    try:
        tts = engines.tts
        assert tts is not None
        audio = AudioOut(args.out, True, tts.sample_rate_hz)
        result = TurnResult()
        async for pcm in engines.threads["tts"].stream(lambda: tts.synthesize(spoken)):
            frame = TTSAudio(turn_id=0, pcm=pcm, sample_rate_hz=tts.sample_rate_hz, clause_index=0)
            result.audio.feed(frame)
            audio.feed(frame)
        done = await audio.finish(result)
        audio.close()
    finally:
        engines.close()
    for line in (done, audio.note):
        if line:
            print(line, file=sys.stderr)
    return 0


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    recordings = demo_recordings(args.questions or demo_dir())
    out_dir: Path = args.out_dir
    speaker = default_output_device() is not None and not args.no_speaker
    engines = _load(settings, args)
    where = "the speaker" if speaker else f"WAV files in {out_dir}/"
    print(f"voicegrok demo: {len(recordings)} spoken questions, replies to {where}\n", flush=True)
    failures = 0
    try:
        async with Assistant(engines, settings) as assistant:
            for i, (path, samples) in enumerate(recordings, start=1):
                print(f"── turn {i} ({path.name})", flush=True)
                wav = None if speaker else out_dir / f"reply{i}.wav"
                audio = AudioOut(wav, True, engines.tts.sample_rate_hz if engines.tts else 22050)
                result = await render_turn(
                    assistant.reply(samples, 16000), sys.stdout, audio=audio, prefix="voicegrok: "
                )
                done = await audio.finish(result) if not result.failed else None
                audio.close()
                if result.failed:
                    failures += 1
                    print(f"(turn failed: {result.failed})", flush=True)
                if result.metrics is not None:
                    print(f"[{result.metrics.summary()}]", flush=True)
                    _write_metrics(args.metrics, result.metrics)
                if done:
                    print(done, flush=True)
                print(flush=True)
    finally:
        engines.close()
    return 1 if failures else 0


async def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:
    from .adapters.microphone import list_devices

    rows = list_devices()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no sound devices found (voicegrok demo and voicegrok reply work without any)")
        return 0
    print(f"{'#':>3}  {'in':>3} {'out':>3} {'rate':>6}  name")
    for r in rows:
        mark = " (default input)" if r["default_input"] else ""
        mark += " (default output)" if r["default_output"] else ""
        row = f"{r['index']:>3}  {r['inputs']:>3} {r['outputs']:>3} {r['rate_hz']:>6}"
        print(f"{row}  {r['name']}{mark}")
    return 0


async def cmd_talk(args: argparse.Namespace, settings: Settings) -> int:
    from .endpointing import EndpointConfig

    config, _ = _user_config(args)
    settings = replace(
        settings,
        llm_model=settings.llm_model or config.llm_model,
        voice=settings.voice or config.voice,
        stt_model=settings.stt_model or config.stt_model,
    )
    engines = _load(settings, args, vad=True)
    end_silence_ms = args.end_silence_ms or config.end_silence_ms
    endpointing = EndpointConfig(end_silence_ms=end_silence_ms, pause_ms=args.pause_ms)
    try:
        return await _live_console(
            args,
            config,
            lambda: Assistant(engines, settings, endpointing=endpointing, realtime=True),
            engines.tts.sample_rate_hz if engines.tts else 22050,
        )
    finally:
        engines.close()


async def _live_console(
    args: argparse.Namespace,
    config: UserConfig,
    assistant: Callable[[], contextlib.AbstractAsyncContextManager[LiveAssistant]],
    speaker_rate_hz: int,
) -> int:
    """The live loop in a terminal (``talk``, ``connect --console``): microphone in,
    speaker out, the conversation printed, until Ctrl+C."""
    from .adapters.console import ConsoleView
    from .adapters.microphone import Microphone
    from .live import LiveSession

    async with assistant() as live:  # first: a server that cannot be reached says so
        mic = Microphone(parse_device(config.input_device))
        try:
            speaker = Speaker(speaker_rate_hz, parse_device(config.output_device))
        except BaseException:
            mic.close()
            raise
        chunks = mic.chunks()
        rate = mic.sample_rate_hz
        canceller = None
        if args.echo_cancel:
            from .adapters.echo import EchoCanceller

            canceller = EchoCanceller.between(speaker, mic)
            chunks, rate = canceller.cancel(chunks), canceller.sample_rate_hz
        # Installed after the audio streams are open: native audio libraries may replace
        # the SIGINT handler, and Ctrl+C (or SIGTERM) must always end the conversation.
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows
                loop.add_signal_handler(sig, stop.set)
        try:
            print(
                f"voicegrok is listening on {mic.name!r} (Ctrl+C to stop). "
                + (
                    "Echo cancellation is on."
                    if canceller
                    else "Echo cancellation is off: use a headset."
                ),
                file=sys.stderr,
                flush=True,
            )
            session = LiveSession(live, speaker, ConsoleView(sys.stdout), args.metrics)
            running = asyncio.create_task(session.run(chunks, rate))
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
            mic.close()
            speaker.close()
            if canceller is not None:
                canceller.close()
    return 0


async def cmd_connect(args: argparse.Namespace, settings: Settings) -> int:
    from .remote import RATE_HZ, RemoteAssistant, realtime_url

    url = realtime_url(args.url)
    token = args.token or os.environ.get("VOICEGROK_TOKEN") or None
    config, path = _user_config(args)
    if args.console or not (sys.stdin.isatty() and sys.stdout.isatty()):
        return await _live_console(args, config, lambda: RemoteAssistant(url, token), RATE_HZ)
    from .ui import RemoteBackend, VoicegrokApp

    app = VoicegrokApp(
        settings,
        config,
        config_path=path,
        backend=RemoteBackend(url, token, echo_cancel=args.echo_cancel),
    )
    quiet_alsa()
    await app.run_async()
    return 0


def _user_config(args: argparse.Namespace) -> tuple[UserConfig, Path | None]:
    """The saved settings (``--config`` or the default file), overridden by the flags given."""
    from .userconfig import load_user_config

    path: Path | None = getattr(args, "config", None)
    config = load_user_config(path)
    changes = {
        name: getattr(args, name)
        for name in ("input_device", "output_device", "voice", "llm_model", "stt_model")
        if getattr(args, name, None) is not None
    }
    return replace(config, **changes), path


async def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from .ui import LocalBackend, VoicegrokApp

    config, path = _user_config(args)
    app = VoicegrokApp(
        settings,
        config,
        config_path=path,
        backend=LocalBackend(echo_cancel=args.echo_cancel),
    )
    # ALSA reports underruns on stderr, where Textual draws the screen: log them instead.
    quiet_alsa()
    await app.run_async()
    return 0


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from .server.app import RealtimeServer, ServerOptions, is_loopback
    from .server.session import Limits

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
    engines = _load(settings, args, vad=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        try:
            server = RealtimeServer(engines, settings, options)
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
    finally:
        engines.close()
    return 0


async def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    rows = [models.describe(e) for e in models.catalog()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<22} {'kind':<4} {'size':>9}  {'present':<8} where")
    for r in rows:
        size = r["size_bytes"]
        size_txt = f"{int(size) / 1e6:.0f} MB" if isinstance(size, int) else "-"
        name = f"{r['name']}{' *' if r['default'] else ''}"
        present = "yes" if r["present"] else "no"
        where = r["path"] if r["present"] else f"{r['origin']}: {r['install']}"
        print(f"{name:<22} {r['kind']:<4} {size_txt:>9}  {present:<8} {where}")
    print(f"\n* default   catalog folder: {models.models_dir()}")
    return 0


async def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from .bench import run_latency_bench, run_reply_bench, run_server_bench

    if args.kind == "server":
        report = await run_server_bench(
            settings, sessions=tuple(args.sessions), runs=args.runs, progress=not args.quiet
        )
    else:
        bench = run_latency_bench if args.kind == "latency" else run_reply_bench
        report = await bench(settings, runs=args.runs, progress=not args.quiet)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


# ---------------------------------------------------------------------------- parser


def _model_options() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("models and speed")
    g.add_argument(
        "--stt-model", metavar="PATH|NAME", help="CTranslate2 whisper folder or catalog name"
    )
    g.add_argument("--llm-model", metavar="PATH|NAME", help="GGUF file or catalog name")
    g.add_argument("--voice", metavar="PATH|NAME", help="Piper .onnx voice or catalog name")
    g.add_argument("--threads", type=_positive, metavar="N", help="CPU threads for the LLM")
    g.add_argument(
        "--stt-threads", type=_positive, metavar="N", help="CPU threads for speech-to-text (all)"
    )
    g.add_argument("--max-tokens", type=_positive, metavar="N", help="longest answer (tokens)")
    g.add_argument("--temperature", type=float, metavar="T", help="LLM sampling temperature")
    g.add_argument("--system-prompt", metavar="TEXT", help="replace the built-in system prompt")
    g.add_argument(
        "--metrics", type=Path, metavar="FILE", help="append per-turn metrics as JSON lines"
    )
    g.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    g.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    return p


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _model_options()
    parser = argparse.ArgumentParser(
        prog="voicegrok",
        description="A real-time voice assistant that runs entirely on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"voicegrok {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("ask", parents=[common], help="answer a typed question, streamed and spoken")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--out", type=Path, metavar="FILE.wav", help="write the spoken answer here")
    p.add_argument("--no-speak", action="store_true", help="text only, no speech")
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("reply", parents=[common], help="one voice turn from a recording to a WAV")
    p.add_argument("question", type=Path, metavar="QUESTION.wav")
    p.add_argument("--out", type=Path, required=True, metavar="ANSWER.wav")
    p.set_defaults(run=cmd_reply)

    p = sub.add_parser("transcribe", parents=[common], help="print the text of recordings")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE")
    p.set_defaults(run=cmd_transcribe)

    p = sub.add_parser("say", parents=[common], help="speak a text (to a WAV or the speaker)")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--out", type=Path, metavar="FILE.wav")
    p.set_defaults(run=cmd_say)

    p = sub.add_parser("demo", parents=[common], help="the itinerary demo: four spoken turns")
    p.add_argument(
        "--out-dir",
        type=Path,
        default=Path("voicegrok-demo"),
        metavar="DIR",
        help="where replies go when there is no speaker (default: ./voicegrok-demo)",
    )
    p.add_argument("--no-speaker", action="store_true", help="write WAV files even with a speaker")
    p.add_argument(
        "--questions",
        type=Path,
        metavar="DIR",
        help="folder of turn1.wav, turn2.wav, ... (default: the checkout's assets/demo)",
    )
    p.set_defaults(run=cmd_demo)

    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--input-device", metavar="NAME|INDEX", help="microphone (voicegrok devices)")
    live.add_argument("--output-device", metavar="NAME|INDEX", help="speaker (voicegrok devices)")
    live.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: config.toml in your config folder, as saved by the UI)",
    )
    live.add_argument(
        "--no-echo-cancel",
        dest="echo_cancel",
        action="store_false",
        help="turn off echo cancellation (fine with a headset)",
    )

    p = sub.add_parser(
        "ui", parents=[common, live], help="the terminal UI (also: voicegrok with no command)"
    )
    p.set_defaults(run=cmd_ui)

    p = sub.add_parser(
        "talk", parents=[common, live], help="talk to it: microphone in, speaker out"
    )
    p.add_argument(
        "--end-silence-ms",
        type=_positive,
        metavar="MS",
        help="silence that ends your turn (default 480, or the saved end-of-turn setting; "
        "raise it if you get cut off)",
    )
    p.add_argument(
        "--pause-ms",
        type=_positive,
        default=160,
        metavar="MS",
        help="pause after which a finished-sounding sentence is answered at once (default 160)",
    )
    p.set_defaults(run=cmd_talk)

    p = sub.add_parser(
        "serve", parents=[common], help="serve remote clients: Realtime API and browser page"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    p.add_argument(
        "--token",
        metavar="SECRET",
        help="clients must send it (bearer token or ?token=); required off loopback "
        "(or set VOICEGROK_TOKEN)",
    )
    p.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="another web origin allowed to connect (repeatable; * for any)",
    )
    p.add_argument("--certfile", type=Path, metavar="PEM", help="TLS certificate (HTTPS/WSS)")
    p.add_argument("--keyfile", type=Path, metavar="PEM", help="TLS private key")
    p.add_argument(
        "--max-sessions", type=_positive, default=8, metavar="N", help="concurrent sessions (8)"
    )
    p.add_argument(
        "--idle-timeout",
        type=_positive,
        default=300,
        metavar="S",
        help="close sessions silent this long (300 s)",
    )
    p.add_argument(
        "--max-message-kb",
        type=_positive,
        default=1024,
        metavar="KB",
        help="largest message accepted (1024 KiB)",
    )
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser(
        "connect",
        parents=[common, live],
        help="talk to a voicegrok serve on another machine (terminal UI, or --console)",
    )
    p.add_argument("url", metavar="ws://HOST:PORT", help="the server (voicegrok serve)")
    p.add_argument("--token", metavar="SECRET", help="the server's token (or set VOICEGROK_TOKEN)")
    p.add_argument(
        "--console", action="store_true", help="print the conversation instead of the UI"
    )
    p.set_defaults(run=cmd_connect)

    p = sub.add_parser("devices", help="list sound input and output devices")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_devices)

    p = sub.add_parser("models", help="list the model catalog")
    p.add_argument("--json", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("bench", parents=[common], help="measure per-stage latency (JSON)")
    p.add_argument(
        "kind",
        nargs="?",
        choices=("latency", "reply", "server"),
        default="latency",
        help="latency: the live loop at real-time pace (default); reply: whole recordings; "
        "server: concurrent websocket sessions",
    )
    p.add_argument(
        "--sessions",
        type=_positive,
        nargs="+",
        default=[1, 20],
        metavar="N",
        help="server bench: concurrent sessions to try (default 1 20)",
    )
    p.add_argument("--runs", type=_positive, default=3, metavar="N", help="runs of the demo turns")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the JSON here")
    p.set_defaults(run=cmd_bench)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    s = Settings()
    changes: dict[str, object] = {}
    for name in (
        "stt_model",
        "llm_model",
        "voice",
        "threads",
        "stt_threads",
        "max_tokens",
        "temperature",
        "system_prompt",
    ):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = value
    return replace(s, **changes)  # type: ignore[arg-type]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            parser.print_help()
            return 0
        args = parser.parse_args(["ui"])
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = asyncio.run(args.run(args, settings_from(args)))
        return code
    except VoicegrokError as e:
        print(f"voicegrok: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `voicegrok ask ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
