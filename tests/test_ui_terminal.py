"""The terminal UI in a real terminal (tmux), on the real models: typed and spoken turns."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import DEMO
from .test_live_devices import VirtualAudio, virtual_audio

__all__ = ["virtual_audio"]  # the fixture, shared with the live-device tests

pytestmark = pytest.mark.skipif(
    shutil.which("tmux") is None and not os.environ.get("CI"),
    reason="needs tmux (installed by .ci/run)",
)


class Terminal:
    """``voicegrok`` (no arguments) running in a detached tmux session."""

    def __init__(self, tmp_path: Path, env: dict[str, str]) -> None:
        self.name = f"vg{os.getpid()}{int(time.time() * 1000) % 100000}"
        env = dict(env, VOICEGROK_CONFIG=str(tmp_path / "config.toml"), TERM="xterm-256color")
        keep = ("PATH", "HOME", "PULSE_SERVER", "XDG_RUNTIME_DIR", "VOICEGROK_")
        assignments = " ".join(
            f"{k}={shlex.quote(v)}" for k, v in env.items() if k.startswith(keep)
        )
        command = f"env {assignments} {shlex.quote(sys.executable)} -m voicegrok"
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", self.name, "-x", "150", "-y", "45", command],
            check=True,
            cwd=tmp_path,
        )

    def screen(self) -> str:
        return subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", self.name],
            capture_output=True,
            text=True,
            check=False,
        ).stdout

    def wait_for(self, *texts: str, timeout_s: float = 120) -> str:
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if all(t in screen for t in texts):
                return screen
            time.sleep(0.3)
        raise AssertionError(f"{texts} not on the screen:\n{screen}")

    def type(self, *keys: str) -> None:
        subprocess.run(["tmux", "send-keys", "-t", self.name, *keys], check=True)

    def alive(self) -> bool:
        return (
            subprocess.run(
                ["tmux", "has-session", "-t", self.name], capture_output=True, check=False
            ).returncode
            == 0
        )

    def close(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.name], capture_output=True, check=False)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    env = dict(os.environ, VOICEGROK_MODELS_DIR=str(tmp_path / "models"))
    # no sound server: PortAudio finds no usable device, the UI becomes a typed chat
    env.pop("PULSE_SERVER", None)
    term = Terminal(tmp_path, env)
    yield term
    term.close()


@pytest.mark.models
def test_typed_question_in_a_real_terminal(terminal: Terminal) -> None:
    """A person types a question in the UI and reads the streamed answer and its speed."""
    terminal.wait_for("type a question", timeout_s=120)
    terminal.type("What is the capital of France?", "Enter")
    screen = terminal.wait_for("you: What is the capital of France?", "tokens/s", "1st tok")
    # a number of tokens per second (not the dash placeholder) and an answer under the question
    speed_line = next(line for line in screen.splitlines() if "tokens/s" in line)
    assert any(ch.isdigit() for ch in speed_line.split("tokens/s")[0][-8:]), screen
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
    term = Terminal(tmp_path, virtual_audio.env)
    try:
        term.wait_for("listening", timeout_s=120)
        virtual_audio.speak(0.5, str(DEMO / "turn2.wav"), 2.0)
        screen = term.wait_for("you: ", "itinerary", "1st tok", timeout_s=60)
        assert "table" in screen.lower(), screen
    finally:
        term.close()
