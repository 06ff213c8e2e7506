"""Devices that come and go: ``voicegrok talk`` outlives a microphone and a speaker that are
unplugged (their PulseAudio modules unloaded) or that stall, says so in one line, and goes
on with them when they are back, the conversation intact."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicegrok.adapters.keeper import SwappableOutput
from voicegrok.adapters.virtual import VirtualSpeaker
from voicegrok.audio import load_audio
from voicegrok.bench import rig
from voicegrok.bench.rig import VirtualAudio

from .conftest import DEMO
from .test_live_devices import ready, start_talk, stop, wait_for_metrics


def test_the_speaker_position_goes_on_counting_across_devices() -> None:
    out = SwappableOutput(22050)
    first = VirtualSpeaker(22050, keep=False)
    out.attach(first)
    out.play(b"\0\0" * 2205)  # 0.1 s
    assert out.queued_bytes == 4410
    out.attach(None)  # unplugged: what was not played is dropped
    assert out.queued_bytes == out.played_bytes <= 4410
    before = out.played_bytes
    second = VirtualSpeaker(44100, keep=False)  # back, at another rate
    out.attach(second)
    out.play(b"\0\0" * 2205)
    assert out.queued_bytes == before + 4410  # counted at the output's own rate
    assert second.queued_bytes == 8820  # played at the device's


needs_pulse = pytest.mark.skipif(
    shutil.which("pulseaudio") is None and not os.environ.get("CI"),
    reason="needs PulseAudio (installed by .ci/run)",
)


@pytest.fixture
def virtual_audio(tmp_path: Path) -> Iterator[VirtualAudio]:
    env = dict(os.environ, VOICEGROK_MODELS_DIR=str(tmp_path / "models"))
    with rig.virtual_audio(tmp_path / "pulse", env) as audio:
        yield audio


def pactl(va: VirtualAudio, *args: str) -> str:
    return subprocess.run(
        ["pactl", *args], env=va.env, capture_output=True, text=True, check=True
    ).stdout


def said(tmp_path: Path, text: str, timeout_s: float = 20) -> str:
    """Wait until talk has printed a line holding ``text``; that line."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        out = (tmp_path / "talk.out").read_text()
        for line in out.splitlines():
            if text in line:
                return line
        time.sleep(0.1)
    raise AssertionError(f"no line with {text!r} in {timeout_s} s:\n{out}")


@needs_pulse
def test_talk_outlives_unplugged_and_stalled_devices(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    va = virtual_audio
    mic = va.microphone()
    talk = start_talk(va, tmp_path)
    ready(talk)
    mic.say(load_audio(DEMO / "turn3.wav"), 0)
    wait_for_metrics(tmp_path / "m.jsonl", 1, timeout_s=120)

    # a stalled microphone: the pipe source gets nothing more
    mic.close()
    lost = time.monotonic()
    said(tmp_path, "microphone lost", timeout_s=10)
    assert time.monotonic() - lost < 5  # within seconds, not a hang
    mic = va.microphone()
    said(tmp_path, "microphone back")

    # both unplugged: their modules unloaded, then loaded again
    loaded = unplug(va)
    said(tmp_path, "lost (unplugged", timeout_s=10)
    mic.close()
    plug_back(va, loaded)
    mic = va.microphone()
    said(tmp_path, "back: listening again", timeout_s=30)

    mic.say(load_audio(DEMO / "turn4.wav"), 0)
    rows = wait_for_metrics(tmp_path / "m.jsonl", 2, timeout_s=120)
    mic.close()
    out, err = stop(talk)
    assert talk.returncode in (0, 130)
    assert "you: Please add a column" in out and out.count("you: ") >= 2, out
    assert rows[1]["first_audio_device_ms"] is not None  # the new speaker played it
    assert "Traceback" not in err


def unplug(va: VirtualAudio) -> dict[str, list[str]]:
    """Unload the speaker's and the microphone's modules; what it takes to load them again."""
    modules = pactl(va, "list", "short", "modules").splitlines()
    loaded = {m.split("\t")[1]: m.split("\t") for m in modules}
    for name in ("module-null-sink", "module-pipe-source"):
        pactl(va, "unload-module", loaded[name][0])
    return loaded


def plug_back(va: VirtualAudio, loaded: dict[str, list[str]]) -> None:
    for name in ("module-null-sink", "module-pipe-source"):
        pactl(va, "load-module", name, *loaded[name][2].split())
    pactl(va, "set-default-sink", "vg_speaker")
    pactl(va, "set-default-source", "vg_mic")


@needs_pulse
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (installed by .ci/run)")
def test_the_ui_falls_back_to_typing_and_recovers(
    virtual_audio: VirtualAudio, tmp_path: Path
) -> None:
    from .test_ui_terminal import start

    va = virtual_audio
    mic = va.microphone()
    term = start(tmp_path, va.env)
    try:
        term.wait_for("listening", timeout_s=120)
        loaded = unplug(va)
        mic.close()
        term.wait_for("microphone and speaker lost", "typed chat", timeout_s=15)
        term.type("What is the capital of France?", "Enter")
        term.wait_for("you: What is the capital of France?", "Paris", timeout_s=60)
        plug_back(va, loaded)
        mic = va.microphone()
        term.wait_for("back: listening again", timeout_s=30)
        term.wait_for("listening", timeout_s=30)
        mic.say(load_audio(DEMO / "turn2.wav"), 0)
        screen = term.wait_for("you: ", "table", timeout_s=60)
        assert "Paris" in screen  # the conversation is all there
    finally:
        mic.close()
        term.close()
