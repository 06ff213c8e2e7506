"""The command line's grammar: each command, with only the options it uses (any other is
argparse's usual "unrecognized arguments" error, exit 2)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from .. import __version__
from ..config import Settings
from ..userconfig import DEFAULT_GREETING
from .arg_types import conversation_id, gain, greeting_text, minutes, positive, resume_id
from .bench import cmd_bench
from .history import cmd_history
from .info import cmd_devices, cmd_models
from .live import cmd_talk, cmd_ui
from .offline import cmd_ask, cmd_demo, cmd_reply, cmd_say, cmd_transcribe
from .remote import cmd_connect, cmd_serve

__all__ = ["build_parser", "settings_from"]

SETTINGS_OPTIONS = (
    "stt_model",
    "llm_model",
    "llm_url",
    "llm_api_key",
    "draft",
    "voice",
    "turn_model",
    "threads",
    "stt_threads",
    "max_tokens",
    "temperature",
    "system_prompt",
    "tools",
)
"""The options that are fields of :class:`~voicegrok.config.Settings`, by the same name."""


def _models(
    p: argparse.ArgumentParser, *, stt: bool, llm: bool, voice: bool, listens: bool = False
) -> None:
    """The options of the engines a command loads: speech-to-text, the LLM, the voice;
    ``listens``: the end-of-turn model of a command that listens to a microphone."""
    g = p.add_argument_group("models and speed")
    if stt:
        g.add_argument(
            "--stt-model", metavar="PATH|NAME", help="CTranslate2 whisper folder or catalog name"
        )
    if llm:
        g.add_argument(
            "--llm-model",
            metavar="PATH|NAME",
            help="GGUF file or catalog name (with --llm-url: the server's model name)",
        )
        g.add_argument(
            "--draft",
            metavar="lookup|none|PATH|NAME",
            help="speculative decoding's guesses: n-grams of the conversation (lookup, the "
            "default), none, or a smaller LLM of the same vocabulary that drafts for it",
        )
        g.add_argument(
            "--llm-url",
            metavar="URL",
            help="answer with an OpenAI-compatible server instead (llama-server, vLLM, ...), "
            "e.g. http://gpu-box:8080/v1",
        )
        g.add_argument(
            "--llm-api-key",
            metavar="KEY",
            help="the --llm-url server's API key (or set VOICEGROK_LLM_API_KEY)",
        )
    if voice:
        g.add_argument("--voice", metavar="PATH|NAME", help="Piper .onnx voice or catalog name")
    if listens:
        g.add_argument(
            "--turn-model",
            metavar="PATH|NAME|none",
            help="end-of-turn model that hears whether the voice sounds finished (Smart Turn "
            "v3, the default); none: the pause and the words decide alone",
        )
    if llm:
        g.add_argument("--threads", type=positive, metavar="N", help="CPU threads for the LLM")
    if stt:
        g.add_argument(
            "--stt-threads",
            type=positive,
            metavar="N",
            help="CPU threads for speech-to-text (all)",
        )
    if llm:
        g.add_argument("--max-tokens", type=positive, metavar="N", help="longest answer (tokens)")
        g.add_argument("--temperature", type=float, metavar="T", help="LLM sampling temperature")
        g.add_argument(
            "--no-tools",
            dest="tools",
            action="store_false",
            default=None,
            help="no built-in tools (clock, timers, calculator, units): the LLM answers all",
        )
        g.add_argument("--system-prompt", metavar="TEXT", help="replace the built-in system prompt")


def _all_models(p: argparse.ArgumentParser, *, listens: bool = False) -> None:
    _models(p, stt=True, llm=True, voice=True, listens=listens)


def _metrics(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--metrics", type=Path, metavar="FILE", help="append per-turn metrics as JSON lines"
    )


def _messages(p: argparse.ArgumentParser, *, quiet: bool = True) -> None:
    """``-v``; ``-q`` for the commands that load models (it hides their progress lines)."""
    if quiet:
        p.add_argument("-q", "--quiet", action="store_true", help="no progress messages")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")


def _history(p: argparse.ArgumentParser) -> None:
    """Kept conversations: ``--resume [ID]``, ``--no-history``."""
    g = p.add_argument_group("conversation history")
    g.add_argument(
        "--resume",
        nargs="?",
        const="latest",
        type=resume_id,
        metavar="ID",
        help="continue the most recent kept conversation, or conversation ID",
    )
    g.add_argument(
        "--no-history", action="store_true", help="keep nothing of this conversation on disk"
    )


def _devices(p: argparse.ArgumentParser) -> None:
    """The live commands' sound devices and saved settings."""
    g = p.add_argument_group("devices and settings")
    g.add_argument("--input-device", metavar="NAME|INDEX", help="microphone (voicegrok devices)")
    g.add_argument("--output-device", metavar="NAME|INDEX", help="speaker (voicegrok devices)")
    _config(g)
    g.add_argument(
        "--no-echo-cancel",
        dest="echo_cancel",
        action="store_false",
        help="turn off echo cancellation (fine with a headset)",
    )


def _greeting(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--greeting",
        type=greeting_text,
        metavar="TEXT",
        help="what it says when it starts listening with echo cancellation on, so that the "
        "canceller learns the room before you speak (default: the saved setting, or "
        f"{DEFAULT_GREETING!r}; '' for none)",
    )


def _config(g: argparse._ActionsContainer) -> None:
    g.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="settings file (default: config.toml in your config folder, as saved by the UI; "
        "its [mcp.NAME] tables name MCP servers whose tools the assistant may call)",
    )


def _offline(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ask", help="answer a typed question, streamed and spoken")
    p.add_argument("text", metavar="TEXT", nargs="?")  # after --resume, it may be taken as ID
    p.add_argument("--out", type=Path, metavar="FILE.wav", help="write the spoken answer here")
    p.add_argument("--no-speak", action="store_true", help="text only, no speech")
    _config(p)
    _models(p, stt=False, llm=True, voice=True)
    _history(p)
    _metrics(p)
    _messages(p)
    p.set_defaults(run=cmd_ask)

    p = sub.add_parser("reply", help="one voice turn from a recording to a WAV")
    p.add_argument("question", type=Path, metavar="QUESTION.wav")
    p.add_argument("--out", type=Path, required=True, metavar="ANSWER.wav")
    _all_models(p)
    _metrics(p)
    _messages(p)
    p.set_defaults(run=cmd_reply)

    p = sub.add_parser("transcribe", help="print the text of recordings")
    p.add_argument("files", type=Path, nargs="+", metavar="FILE")
    _models(p, stt=True, llm=False, voice=False)
    _messages(p)
    p.set_defaults(run=cmd_transcribe)

    p = sub.add_parser("say", help="speak a text (to a WAV or the speaker)")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--out", type=Path, metavar="FILE.wav")
    _models(p, stt=False, llm=False, voice=True)
    _messages(p)
    p.set_defaults(run=cmd_say)

    p = sub.add_parser("demo", help="the itinerary demo: four spoken turns")
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
    _all_models(p)
    _metrics(p)
    _messages(p)
    p.set_defaults(run=cmd_demo)


def _live(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ui", help="the terminal UI (also: voicegrok with no command)")
    _all_models(p, listens=True)
    _devices(p)
    _greeting(p)
    _history(p)
    _metrics(p)
    _messages(p, quiet=False)  # the UI shows the loading itself
    p.set_defaults(run=cmd_ui)

    p = sub.add_parser("talk", help="talk to it: microphone in, speaker out")
    p.add_argument(
        "--end-silence-ms",
        type=positive,
        metavar="MS",
        help="silence that ends your turn (default 480, and 800 when the end-of-turn model "
        "is in doubt; or the saved end-of-turn setting; raise it if you get cut off)",
    )
    p.add_argument(
        "--pause-ms",
        type=positive,
        default=160,
        metavar="MS",
        help="pause after which a finished-sounding sentence is answered at once (default 160)",
    )
    _all_models(p, listens=True)
    _devices(p)
    _greeting(p)
    _history(p)
    _metrics(p)
    _messages(p)
    p.set_defaults(run=cmd_talk)


def _remote(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="serve remote clients: Realtime API and browser page")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free one)")
    _config(p)
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
        "--max-sessions", type=positive, default=8, metavar="N", help="concurrent sessions (8)"
    )
    p.add_argument(
        "--idle-timeout",
        type=positive,
        default=300,
        metavar="S",
        help="close sessions silent this long (300 s)",
    )
    p.add_argument(
        "--history",
        action="store_true",
        help="keep every session's conversation (voicegrok history); off by default",
    )
    p.add_argument(
        "--max-message-kb",
        type=positive,
        default=1024,
        metavar="KB",
        help="largest message accepted (1024 KiB)",
    )
    _all_models(p, listens=True)
    _messages(p)
    p.set_defaults(run=cmd_serve)

    p = sub.add_parser(
        "connect",
        help="talk to a voicegrok serve on another machine (terminal UI, or --console)",
        description="The models, and their options, are those of the server.",
    )
    p.add_argument("url", metavar="ws://HOST:PORT", help="the server (voicegrok serve)")
    p.add_argument("--token", metavar="SECRET", help="the server's token (or set VOICEGROK_TOKEN)")
    p.add_argument(
        "--console", action="store_true", help="print the conversation instead of the UI"
    )
    _devices(p)
    _metrics(p)  # the console's turns (the UI shows its own)
    _messages(p, quiet=False)  # nothing is loaded here
    p.set_defaults(run=cmd_connect)


def _kept(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history",
        help="kept conversations: list them, print one, or forget them all",
        description="Conversations of ask, talk and the UI are kept in a SQLite database in "
        "your data folder (serve keeps them only with --history). --no-history keeps one out.",
    )
    p.add_argument("id", nargs="?", type=conversation_id, metavar="ID", help="print this one")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.add_argument("--limit", type=positive, default=20, metavar="N", help="list N (20)")
    p.add_argument("--clear", action="store_true", help="forget every kept conversation")
    p.set_defaults(run=cmd_history)


def _info(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("devices", help="list sound input and output devices")
    p.add_argument("--json", action="store_true")
    p.set_defaults(run=cmd_devices)

    p = sub.add_parser("models", help="list the model catalog, and the LLM auto picks here")
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--bench",
        action="store_true",
        help="measure each installed LLM of known quality on this machine again (first "
        "token on a typical question, tokens/s) and show the one auto picks",
    )
    p.set_defaults(run=cmd_models)

    p = sub.add_parser("bench", help="measure per-stage latency (JSON)")
    p.add_argument(
        "kind",
        nargs="?",
        choices=(
            "latency",
            "reply",
            "server",
            "ui",
            "soak",
            "tools",
            "quality",
            "speculative",
            "turns",
            "echo",
        ),
        default="latency",
        help="latency: the live loop at real-time pace (default); reply: whole recordings; "
        "server: concurrent websocket sessions; ui: the terminal UI against ask and talk; "
        "soak: a long scripted conversation with the UI (failures, memory, latency drift); "
        "tools: requests that need a tool and ones that must not call one, scored; "
        "quality: a hundred questions and the itinerary demo, graded; "
        "speculative: the LLM's decoding speed with and without guessed tokens; "
        "turns: false cut-offs against latency of each end-of-turn policy; "
        "echo: open speakers (the speaker heard in the microphone), tried from outside",
    )
    p.add_argument(
        "--gains",
        type=gain,
        nargs="+",
        default=[0.0, 0.25, 0.5],
        metavar="G",
        help="echo bench: speaker-to-microphone gains (default 0 0.25 0.5: none, -12, -6 dB)",
    )
    p.add_argument(
        "--set",
        type=Path,
        metavar="FILE.toml",
        help="turns bench: the turn-taking set (default: tests/data/turn_taking.toml)",
    )
    p.add_argument(
        "--minutes",
        type=minutes,
        metavar="N",
        help="soak bench: how long to talk, in minutes (default 60; fractions allowed); "
        "echo bench: a conversation this long at each gain instead of the short script",
    )
    p.add_argument(
        "--sessions",
        type=positive,
        nargs="+",
        default=[1, 20],
        metavar="N",
        help="server bench: concurrent sessions to try (default 1 20)",
    )
    p.add_argument(
        "--modes",
        nargs="+",
        choices=("text", "speech", "heard"),
        default=["text", "speech", "heard"],
        help="ui bench: typed prompts without and with speech, heard latency (default: all)",
    )
    p.add_argument(
        "--tool-modes",
        dest="modes_of_tools",
        nargs="+",
        choices=("typed", "spoken"),
        default=["typed", "spoken"],
        help="tools bench: requests typed, and spoken then heard (default: both)",
    )
    p.add_argument(
        "--runs",
        type=positive,
        default=3,
        metavar="N",
        help="runs of the demo turns (ui bench: of each prompt and question)",
    )
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the JSON here")
    _all_models(p, listens=True)
    _messages(p)
    p.set_defaults(run=cmd_bench)


def build_parser() -> argparse.ArgumentParser:
    """The ``voicegrok`` parser; each command's namespace has ``run(args, settings)``."""
    parser = argparse.ArgumentParser(
        prog="voicegrok",
        description="A real-time voice assistant that runs entirely on your own machine.",
    )
    parser.add_argument("--version", action="version", version=f"voicegrok {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _offline(sub)
    _live(sub)
    _remote(sub)
    _kept(sub)
    _info(sub)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    """The settings the options given ask for (the built-in defaults for the rest)."""
    changes = {
        name: value for name in SETTINGS_OPTIONS if (value := getattr(args, name, None)) is not None
    }
    return replace(Settings(), **changes)
