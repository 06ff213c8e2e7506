"""Each command accepts the options it uses and no other: an option a command would ignore
is argparse's "unrecognized arguments" error, exit 2."""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import textwrap
from pathlib import Path

import pytest

from voicegrok.cli import build_parser, settings_from, ui_by_default
from voicegrok.cli.parser import SETTINGS_OPTIONS
from voicegrok.config import Settings

from .conftest import DEMO

STT = ["--stt-model", "tiny", "--stt-threads", "2"]
LLM = [
    *("--llm-model", "m.gguf", "--threads", "3", "--max-tokens", "50"),
    *("--temperature", "0.5", "--system-prompt", "Be brief."),
]
VOICE = ["--voice", "v.onnx"]
MODELS = [*STT, *LLM, *VOICE]
DEVICES = ["--input-device", "3", "--output-device", "USB", "--config", "c.toml"]
DEVICES += ["--no-echo-cancel"]
METRICS = ["--metrics", "m.jsonl"]

USED = {
    "ask": ["hi", "--out", "a.wav", "--no-speak", *LLM, *VOICE, *METRICS, "-q", "-v"],
    "reply": ["q.wav", "--out", "a.wav", *MODELS, *METRICS, "-q", "-v"],
    "transcribe": ["a.wav", "b.wav", *STT, "-q", "-v"],
    "say": ["hi", "--out", "s.wav", *VOICE, "-q", "-v"],
    "demo": ["--out-dir", "d", "--no-speaker", "--questions", "q", *MODELS, *METRICS, "-q"],
    "ui": [*MODELS, *DEVICES, *METRICS, "-v"],
    "talk": [*MODELS, *DEVICES, *METRICS, "--end-silence-ms", "600", "--pause-ms", "200", "-q"],
    "serve": [
        *("--host", "0.0.0.0", "--port", "0", "--token", "t", "--allow-origin", "*"),
        *("--certfile", "c.pem", "--keyfile", "k.pem", "--max-sessions", "2"),
        *("--idle-timeout", "9", "--max-message-kb", "64", *MODELS, "-q", "-v"),
    ],
    "connect": ["ws://box:8765", "--token", "t", "--console", *DEVICES, *METRICS, "-v"],
    "devices": ["--json"],
    "models": ["--json"],
    "bench": [
        *("server", "--sessions", "1", "4", "--runs", "2", "--modes", "text", "heard"),
        *("--out", "b.json", *MODELS, "-q"),
    ],
}
"""Every option each command uses, all at once."""


def parse(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


@pytest.mark.parametrize("command", sorted(USED))
def test_every_option_a_command_uses_is_accepted(command: str) -> None:
    args = parse([command, *USED[command]])
    assert args.command == command
    given = [a for a in USED[command] if a.startswith("--")]
    settings = settings_from(args)
    if "--llm-model" in given:
        assert (settings.llm_model, settings.threads, settings.max_tokens) == ("m.gguf", 3, 50)
        assert (settings.temperature, settings.system_prompt) == (0.5, "Be brief.")
    if "--stt-model" in given:
        assert (settings.stt_model, settings.stt_threads) == ("tiny", 2)
    if "--voice" in given:
        assert settings.voice == "v.onnx"
    if "--no-echo-cancel" in given:
        assert args.echo_cancel is False and args.config == Path("c.toml")
        assert (args.input_device, args.output_device) == ("3", "USB")
    if "--metrics" in given:
        assert args.metrics == Path("m.jsonl")


@pytest.mark.parametrize(
    "argv",
    [
        # connect: the models are the server's
        ["connect", "ws://box:8765", "--llm-model", "x.gguf"],
        ["connect", "ws://box:8765", "--max-tokens", "5"],
        ["connect", "ws://box:8765", "--system-prompt", "Be brief."],
        ["connect", "ws://box:8765", "--voice", "v.onnx"],
        ["connect", "ws://box:8765", "--threads", "2"],
        ["connect", "ws://box:8765", "-q"],
        # no per-turn metrics written
        ["serve", "--metrics", "m.jsonl"],
        ["say", "hi", "--metrics", "m.jsonl"],
        ["transcribe", "a.wav", "--metrics", "m.jsonl"],
        ["bench", "latency", "--metrics", "m.jsonl"],
        # engines the command does not load
        ["transcribe", "a.wav", "--llm-model", "x.gguf"],
        ["transcribe", "a.wav", "--voice", "v.onnx"],
        ["transcribe", "a.wav", "--threads", "2"],
        ["say", "hi", "--llm-model", "x.gguf"],
        ["say", "hi", "--stt-model", "tiny"],
        ["say", "hi", "--system-prompt", "Be brief."],
        ["ask", "hi", "--stt-model", "tiny"],
        ["ask", "hi", "--stt-threads", "2"],
        # no devices, no saved settings
        ["ask", "hi", "--input-device", "3"],
        ["serve", "--output-device", "3"],
        ["demo", "--config", "c.toml"],
        ["serve", "--no-echo-cancel"],
        # nothing loaded, nothing to quieten
        ["ui", "-q"],
        ["models", "-q"],
        ["devices", "--llm-model", "x.gguf"],
        # another command's own options
        ["talk", "--token", "t"],
        ["say", "hi", "--no-speak"],
        ["serve", "--console"],
    ],
)
def test_an_option_the_command_does_not_use_exits_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2
    assert f"unrecognized arguments: {argv[-2] if argv[-1][0] != '-' else argv[-1]}" in (
        capsys.readouterr().err
    )


def _reads(function: object) -> set[str]:
    """The attributes of ``args`` a command function reads (``args.X``, ``getattr``)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))  # type: ignore[arg-type]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) == "args":
            names.add(node.attr)
    return names


HELPERS = {
    "load(": {"quiet"},
    "user_config(": {"config", "input_device", "output_device"},
    "kept_conversation(": {"resume", "no_history"},
}
"""What the shared helpers read of ``args`` (cli/common.py, cli/history.py)."""


@pytest.mark.parametrize("command", sorted(USED))
def test_a_command_reads_what_it_accepts_and_accepts_what_it_reads(command: str) -> None:
    """Its options outside the settings are all read by its code (plus ``-v``, read by
    ``main``); everything its code reads of ``args`` is one of its options."""
    args = parse([command, *USED[command]])
    accepted = set(vars(args)) - {"command", "run"}
    source = inspect.getsource(args.run)
    read = _reads(args.run)
    for call, names in HELPERS.items():
        if re.search(r"(?<![\w.])" + re.escape(call), source):  # not load_user_config(
            read |= names
    assert read <= accepted, f"{command} reads options it does not have"
    unread = accepted - read - set(SETTINGS_OPTIONS) - {"verbose"}
    assert not unread, f"{command} accepts options it never reads: {unread}"


def test_settings_from_leaves_out_what_is_not_given() -> None:
    assert settings_from(parse(["say", "hi"])) == Settings()


def test_options_with_no_command_are_the_terminal_uis() -> None:
    args = parse(ui_by_default(["--no-history", "--max-tokens", "600"]))
    assert args.command == "ui" and args.no_history and args.max_tokens == 600
    for own in (["--version"], ["-h"], ["--help"], [], ["talk", "--no-history"]):
        assert ui_by_default(own) == own


def test_the_command_line_rejects_an_unused_option_in_one_line(cli: object) -> None:
    """As a user sees it: exit 2, argparse's message, no traceback, nothing loaded."""
    for argv, unused in [
        (["connect", "ws://127.0.0.1:9", "--llm-model", "x.gguf"], "--llm-model x.gguf"),
        (["say", "hi", "--out", "s.wav", "--metrics", "m.jsonl"], "--metrics m.jsonl"),
    ]:
        r = cli(*argv)  # type: ignore[operator]
        assert r.code == 2, r.err
        assert f"unrecognized arguments: {unused}" in r.err and "Traceback" not in r.err


@pytest.mark.models
def test_demo_answers_a_folder_of_questions_into_wav_files(cli: object, tmp_path: Path) -> None:
    """``voicegrok demo`` on one recorded question: transcript, answer, timings, a WAV."""
    questions = tmp_path / "questions"
    questions.mkdir()
    (questions / "turn1.wav").write_bytes((DEMO / "turn2.wav").read_bytes())
    r = cli(  # type: ignore[operator]
        "demo", "--questions", str(questions), "--no-speaker", "--metrics", "m.jsonl", "-q"
    )
    assert r.code == 0, r.err
    assert "voicegrok demo: 1 spoken questions" in r.out
    assert "you: Can you put this itinerary in a table?" in r.out and "voicegrok: " in r.out
    assert "first audio" in r.out and "wrote voicegrok-demo/reply1.wav" in r.out
    assert (tmp_path / "voicegrok-demo" / "reply1.wav").stat().st_size > 10_000
    assert (tmp_path / "m.jsonl").read_text().count("\n") == 1
