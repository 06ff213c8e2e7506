"""A program in a real terminal: a detached tmux session on a private tmux server, driven
as a person would (keys typed, the screen read). The benches and the terminal tests run
``voicegrok ui`` in one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import VoicegrokError

__all__ = ["Terminal", "TerminalError", "missing", "voicegrok_terminal"]


def missing() -> str | None:
    """Why there can be no terminal here (None: there can)."""
    return None if shutil.which("tmux") else "tmux not installed (Debian: apt-get install tmux)"


class TerminalError(VoicegrokError):
    """The screen did not show what was waited for. The message's first line says so; the
    screen last seen follows it (and is ``screen``)."""

    def __init__(self, message: str, screen: str) -> None:
        super().__init__(f"{message}\n{screen}")
        self.screen = screen


class Terminal:
    """``command`` running in a detached tmux session of ``width`` x ``height`` cells, with
    exactly ``env`` as its environment and ``cwd`` as its folder; its own tmux server, so
    no other tmux session is touched. :meth:`close` ends both."""

    def __init__(
        self,
        command: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        width: int = 140,
        height: int = 40,
    ) -> None:
        self.server = f"voicegrok-{os.getpid()}-{time.monotonic_ns() % 10**9}"
        # (tmux sets TERM, TMUX... in the pane: ``env -i`` gives it exactly ``env``;
        # a dead pane stays, so that its last screen can be read)
        assignments = [f"{k}={v}" for k, v in env.items()]
        started = self._tmux(
            "new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height),
            "env", "-i", *assignments, *command,
            ";", "set-option", "-t", "main", "remain-on-exit", "on",
            cwd=cwd,
        )  # fmt: skip
        if started.returncode != 0:
            raise VoicegrokError(f"tmux could not start: {started.stderr.strip()}")

    def _tmux(
        self, *args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["tmux", "-L", self.server, *args],
            capture_output=True,
            text=True,
            check=False,
            env=None if env is None else dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
        )

    def screen(self) -> str:
        """The text on the screen now."""
        return self._tmux("capture-pane", "-p", "-t", "main").stdout

    def wait_for(self, *texts: str, timeout_s: float = 120, any_of: bool = False) -> str:
        """The screen once it shows every one of ``texts`` (or one of them, ``any_of``);
        :class:`TerminalError` after ``timeout_s`` or when the program has ended."""
        deadline = time.monotonic() + timeout_s
        found = any if any_of else all
        while True:
            screen = self.screen()
            if found(t in screen for t in texts):
                return screen
            if not self.alive():
                last = [
                    line.strip()
                    for line in screen.splitlines()
                    if line.strip() and not line.startswith("Pane is dead")
                ]
                raise TerminalError(
                    f"the program in the terminal ended ({last[-1] if last else 'no output'})",
                    screen,
                )
            if time.monotonic() > deadline:
                raise TerminalError(
                    f"{' or '.join(map(repr, texts)) if any_of else texts} not on the screen "
                    f"after {timeout_s:g} s",
                    screen,
                )
            time.sleep(0.2)

    def type(self, *keys: str) -> None:
        """Press keys, named as tmux names them (``Enter``, ``C-n``...)."""
        self._tmux("send-keys", "-t", "main", *keys)

    def type_text(self, text: str) -> None:
        """Type ``text`` as it is."""
        self._tmux("send-keys", "-t", "main", "-l", text)

    def pid(self) -> int | None:
        """The program's process id (None once it has ended)."""
        out = self._tmux("display-message", "-p", "-t", "main", "#{pane_dead} #{pane_pid}")
        dead, _, pid = out.stdout.strip().partition(" ")
        return int(pid) if out.returncode == 0 and dead == "0" and pid.isdigit() else None

    def alive(self) -> bool:
        return self.pid() is not None

    def pause(self) -> None:
        """Stop the program (SIGSTOP to its process group) until :meth:`resume`."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def _signal(self, sig: signal.Signals) -> None:
        pid = self.pid()
        if pid is not None:
            try:
                os.killpg(os.getpgid(pid), sig)
            except ProcessLookupError:
                pass

    def close(self) -> None:
        """End the program (if still running) and the tmux server."""
        self.resume()  # a stopped program would not see the hangup
        self._tmux("kill-server")


def voicegrok_terminal(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    folder: Path,
    python: str,
    width: int = 140,
    height: int = 40,
) -> Terminal:
    """``voicegrok ARGS`` in a :class:`Terminal` (``TERM=xterm-256color``) in ``folder``,
    with its settings file there (``VOICEGROK_CONFIG``: not the person's saved settings)."""
    env = dict(env, VOICEGROK_CONFIG=str(folder / "config.toml"), TERM="xterm-256color")
    return Terminal(
        [python, "-m", "voicegrok", *args], env=env, cwd=folder, width=width, height=height
    )
