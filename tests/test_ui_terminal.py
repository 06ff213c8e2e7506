"""The terminal UI in a real terminal (tmux), on the real models: typed and spoken turns."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicegrok.bench.rig import VirtualAudio
from voicegrok.bench.terminal import Terminal, voicegrok_terminal

from .conftest import DEMO
from .test_live_devices import fed, virtual_audio

__all__ = ["virtual_audio"]  # the fixture, shared with the live-device tests

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("CI"),
    reason="needs tmux (installed by .ci/run)",
)


def start(tmp_path: Path, env: dict[str, str]) -> Terminal:
    """``voicegrok`` (no arguments) in a 150x45 terminal, with a few of ``env``'s variables."""
    keep = ("PATH", "HOME", "PULSE_SERVER", "XDG_RUNTIME_DIR", "VOICEGROK_")
    env = {k: v for k, v in env.items() if k.startswith(keep)}
    return voicegrok_terminal(
        [], env=env, folder=tmp_path, python=sys.executable, width=150, height=45
    )


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    env = dict(os.environ, VOICEGROK_MODELS_DIR=str(tmp_path / "models"))
    # no sound server: PortAudio finds no usable device, the UI becomes a typed chat
    env.pop("PULSE_SERVER", None)
    term = start(tmp_path, env)
    yield term
    term.close()


@pytest.mark.models
def test_typed_question_in_a_real_terminal(terminal: Terminal) -> None:
    """A person types a question in the UI and reads the streamed answer and its speed."""
    terminal.wait_for("type a question", timeout_s=120)
    terminal.type("What is the capital of France?", "Enter")
    screen = terminal.wait_for("you: What is the capital of France?", "tokens/s", "1st tok")

    def speed_shown(screen: str) -> bool:  # a number, not the dash placeholder
        line = next((line for line in screen.splitlines() if "tokens/s" in line), "")
        return any(ch.isdigit() for ch in line.split("tokens/s")[0][-8:])

    # the panel shows its placeholders at once: wait for the answer's own speed (a busy
    # machine takes a while to answer)
    deadline = time.monotonic() + 60
    while not speed_shown(screen) and time.monotonic() < deadline:
        time.sleep(0.2)
        screen = terminal.screen()
    assert speed_shown(screen), screen
    after = screen.split("you: What is the capital of France?", 1)[1]
    assert any(line.strip() for line in after.splitlines()[:3]), screen
    terminal.type("C-q")
    deadline = time.monotonic() + 15
    while terminal.alive() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not terminal.alive(), "Ctrl+Q quits"


@pytest.mark.models
def test_spoken_question_appears_in_the_ui(virtual_audio: VirtualAudio, tmp_path: Path) -> None:
    """With the virtual microphone and speaker, a spoken question is transcribed on screen
    and answered."""
    term = start(tmp_path, virtual_audio.env)
    try:
        with fed(virtual_audio):  # (through the greeting)
            term.wait_for("listening", timeout_s=120)
        virtual_audio.speak(0.5, str(DEMO / "turn2.wav"), 2.0)
        screen = term.wait_for("you: ", "itinerary", "1st tok", timeout_s=60)
        assert "table" in screen.lower(), screen
    finally:
        term.close()
