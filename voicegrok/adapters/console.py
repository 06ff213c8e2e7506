"""The console face of a live conversation: frames printed as lines (``voicegrok talk``)."""

from __future__ import annotations

from typing import TextIO

from ..frames import (
    Alert,
    Frame,
    Greeting,
    Interrupt,
    LLMDone,
    LLMToken,
    SpeechStarted,
    ToolUsed,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)

__all__ = ["ConsoleView"]


class ConsoleView:
    """Prints a live conversation to a terminal (``voicegrok talk``)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._tty = out.isatty()
        self._answering = False
        """An answer's line is open (its tokens written, no newline yet)."""
        self._held: dict[int, list[Frame]] = {}
        """Answer tokens that came before their question's transcript (a tool's answer is
        ready at once), printed after it."""

    def __call__(self, frame: Frame) -> None:
        turn = frame.turn_id
        if isinstance(frame, TurnStarted) and frame.source in ("speech", "text"):
            self._held[turn] = []  # its answer is printed after its transcript
        elif isinstance(frame, LLMToken | ToolUsed) and turn in self._held:
            self._held[turn].append(frame)
            return
        elif turn in self._held and not (isinstance(frame, UserText) and not frame.final):
            held = self._held.pop(turn)
            transcript = isinstance(frame, UserText)
            if transcript:
                self._show(frame)
            # the tool's line before the answer it gave
            for early in sorted(held, key=lambda f: not isinstance(f, ToolUsed)):
                self._show(early)
            if transcript:
                return
        self._show(frame)

    def _show(self, frame: Frame) -> None:
        out = self.out
        if isinstance(frame, SpeechStarted):
            # over an answer still being written: on a line of its own, not inside the
            # answer's ("New Orleans(listening…)")
            self._say(("\n" if self._answering else "") + "(listening…)")
        elif isinstance(frame, TurnRetracted):
            self._say("\n(you went on: still listening…)")
        elif isinstance(frame, UserText) and not frame.final:
            if self._tty:
                out.write(f"\r\x1b[K… {frame.text}")
                out.flush()
        elif isinstance(frame, UserText):
            clear = "\r\x1b[K" if self._tty else ""
            self._say(f"{clear}you: {frame.text}")
        elif isinstance(frame, Alert | Greeting):
            self._say(f"voicegrok: {frame.text}")
        elif isinstance(frame, ToolUsed):
            failed = " (failed)" if frame.error else ""
            line = f"(tool {frame.name} {frame.arguments} -> {frame.output}{failed})"
            self._say(("\n" if self._answering else "") + line)
        elif isinstance(frame, LLMToken):
            if frame.index == 0:
                out.write("voicegrok: ")
            out.write(frame.text)
            self._answering = True
            out.flush()
        elif isinstance(frame, LLMDone):
            if frame.text and self._answering:
                out.write("\n")
            self._answering = False
        elif isinstance(frame, TurnMetrics):
            self._say(f"[{frame.summary()}]")
        elif isinstance(frame, TurnFailed):
            self._say(f"(could not answer: {frame.message})")
        elif isinstance(frame, Interrupt) and frame.reason:
            self._say(f"\n({frame.reason})")

    def _say(self, line: str) -> None:
        self._answering = False
        print(line, file=self.out, flush=True)
