"""``voicegrok`` commands run as a person runs them, in their own processes: ``ask``,
``talk`` and ``ui`` (in a real terminal), each with its per-turn metrics file."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from ..config import Settings
from ..errors import VoicegrokError, first_line
from .terminal import Terminal, voicegrok_terminal

__all__ = ["NO_DEVICE", "UI_READY", "MetricsFile", "Voicegrok"]

UI_READY = ("type a question", "listening")
"""What the UI's status shows once its models are loaded (typed chat, or microphone on)."""
UI_FAILED = "✖ error"
"""What its status shows when it could not start (e.g. a model that cannot be loaded)."""
NO_DEVICE = "voicegrok-bench: no such device"
"""A sound device name that matches none: the UI then has no microphone or speaker."""
_ASK_OPTIONS = (
    "llm_model",
    "draft",
    "llm_url",
    "llm_api_key",
    "voice",
    "threads",
    "max_tokens",
    "temperature",
    "system_prompt",
)
"""The settings ``ask`` takes as options (``talk`` and ``ui`` take them all)."""
_OPTIONS = (*_ASK_OPTIONS, "stt_model", "stt_threads", "turn_model")


def settings_flags(settings: Settings, names: Sequence[str] = _OPTIONS) -> list[str]:
    """The command-line options that give a command ``settings`` (those of ``names`` that
    differ from the defaults)."""
    default = Settings()
    known = {f.name for f in fields(Settings)}
    flags: list[str] = []
    for name in names:
        value = getattr(settings, name)
        if name in known and value is not None and value != getattr(default, name):
            flags += [f"--{name.replace('_', '-')}", str(value)]
    return flags


class MetricsFile:
    """A ``--metrics`` file that a running command appends one JSON line to per turn."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._rows: list[dict[str, object]] = []
        self._read = 0
        """Bytes of whole lines read so far: each look reads only what was added (a soak
        looks 20 times a second, at a file of hundreds of turns)."""

    def rows(self) -> list[dict[str, object]]:
        try:
            with self.path.open("rb") as f:
                if os.fstat(f.fileno()).st_size < self._read:  # written anew
                    self._rows, self._read = [], 0
                f.seek(self._read)
                added = f.read()
        except FileNotFoundError:
            return []
        whole = added.rfind(b"\n") + 1  # a line still being written waits for its end
        for line in added[:whole].splitlines():
            with contextlib.suppress(ValueError):
                self._rows.append(json.loads(line))
        self._read += whole
        return list(self._rows)

    def wait(
        self, n: int, *, timeout_s: float, alive: Callable[[], bool], what: str
    ) -> dict[str, object]:
        """Row ``n`` (1 is the first) once it is there; an error when ``what`` ends or
        ``timeout_s`` passes first."""
        deadline = time.monotonic() + timeout_s
        while True:
            rows = self.rows()
            if len(rows) >= n:
                return rows[n - 1]
            if not alive():
                raise VoicegrokError(f"{what} ended before answering")
            if time.monotonic() > deadline:
                raise VoicegrokError(f"{what} gave no answer in {timeout_s:g} s")
            time.sleep(0.05)


@dataclass
class Voicegrok:
    """How the bench starts voicegrok: this Python, the model options of the bench's
    command line, an environment (e.g. with virtual sound devices) and a work folder."""

    python: str
    settings: Settings
    env: Mapping[str, str]
    folder: Path

    def with_env(self, env: Mapping[str, str], folder: Path) -> Voicegrok:
        folder.mkdir(parents=True, exist_ok=True)
        return Voicegrok(self.python, self.settings, env, folder)

    def _env(self) -> dict[str, str]:
        """Settings in the work folder, not the person's saved ones (``talk`` and ``ui``
        read them)."""
        return dict(self.env, VOICEGROK_CONFIG=str(self.folder / "config.toml"))

    def ask(
        self, prompt: str, metrics: MetricsFile, *, speak: bool, timeout_s: float = 600
    ) -> dict[str, object]:
        """``voicegrok ask PROMPT`` (``--no-speak`` unless ``speak``): its metrics row."""
        n = len(metrics.rows())
        command = [
            *(["--no-speak"] if not speak else []),
            *("--metrics", str(metrics.path), "-q"),
            *settings_flags(self.settings, _ASK_OPTIONS),
        ]
        done = subprocess.run(
            [self.python, "-m", "voicegrok", "ask", *command, prompt],
            env=self._env(),
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        rows = metrics.rows()
        if done.returncode != 0 or len(rows) <= n:
            last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
            raise VoicegrokError(f"voicegrok ask failed: {last[0]}")
        return rows[n]

    @contextlib.contextmanager
    def ui(self, metrics: MetricsFile, *extra: str, ready_s: float = 300) -> Iterator[Terminal]:
        """``voicegrok ui --metrics FILE`` in a 140x40 terminal, once it is ready (its
        status shows :data:`UI_READY`); closed on the way out."""
        args = ["ui", "--metrics", str(metrics.path), *settings_flags(self.settings), *extra]
        term = voicegrok_terminal(args, env=self.env, folder=self.folder, python=self.python)
        try:
            screen = term.wait_for(*UI_READY, UI_FAILED, timeout_s=ready_s, any_of=True)
            if not any(text in screen for text in UI_READY):
                said = [line for line in screen.splitlines() if "error: " in line]
                why = said[0].split("│")[0].split("error: ", 1)[1].strip() if said else "?"
                raise VoicegrokError(f"voicegrok ui could not start: {why}")
            yield term
        finally:
            term.close()

    @contextlib.contextmanager
    def talk(self, metrics: MetricsFile, ready_s: float = 300) -> Iterator[Callable[[], bool]]:
        """``voicegrok talk --metrics FILE`` once it is listening; yields a function that
        tells whether it still runs. Stopped with Ctrl+C (SIGINT) on the way out."""
        out, err = self.folder / "talk.out", self.folder / "talk.err"
        with out.open("w") as stdout, err.open("w") as stderr:  # the child has its copies
            proc = subprocess.Popen(
                [
                    *(self.python, "-m", "voicegrok", "talk", "--metrics", str(metrics.path)),
                    *("-q", *settings_flags(self.settings)),
                ],
                env=self._env(),
                cwd=self.folder,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            deadline = time.monotonic() + ready_s
            while "is listening" not in err.read_text(errors="replace"):
                if proc.poll() is not None:
                    lines = err.read_text(errors="replace").strip().splitlines()
                    raise VoicegrokError(f"voicegrok talk ended: {(lines or ['no output'])[-1]}")
                if time.monotonic() > deadline:
                    raise VoicegrokError(f"voicegrok talk did not listen within {ready_s:g} s")
                time.sleep(0.1)
            yield lambda: proc.poll() is None
        finally:
            _stop(proc)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Ctrl+C, then a kill if it has not ended in 30 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def failure(e: BaseException) -> str:
    """One line about an error, for a report or a message."""
    if isinstance(e, VoicegrokError):
        return first_line(e, limit=400)
    return f"{type(e).__name__}: {first_line(e, limit=400)}"
