"""The console face of a live conversation: frames printed as lines (``voicegrok talk``)."""

from __future__ import annotations

from typing import TextIO

from ..frames import (
    Alert,
    Frame,
    Interrupt,
    LLMDone,
    LLMToken,
    SpeechStarted,
    ToolUsed,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    UserText,
)

__all__ = ["ConsoleView"]


class ConsoleView:
    """Prints a live conversation to a terminal (``voicegrok talk``)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._tty = out.isatty()

    def __call__(self, frame: Frame) -> None:
        out = self.out
        if isinstance(frame, SpeechStarted):
            self._say("(listening…)")
        elif isinstance(frame, TurnRetracted):
            self._say("\n(you went on: still listening…)")
        elif isinstance(frame, UserText) and not frame.final:
            if self._tty:
                out.write(f"\r\x1b[K… {frame.text}")
                out.flush()
        elif isinstance(frame, UserText):
            clear = "\r\x1b[K" if self._tty else ""
            self._say(f"{clear}you: {frame.text}")
        elif isinstance(frame, Alert):
            self._say(f"voicegrok: {frame.text}")
        elif isinstance(frame, ToolUsed):
            failed = " (failed)" if frame.error else ""
            self._say(f"(tool {frame.name} {frame.arguments} -> {frame.output}{failed})")
        elif isinstance(frame, LLMToken):
            if frame.index == 0:
                out.write("voicegrok: ")
            out.write(frame.text)
            out.flush()
        elif isinstance(frame, LLMDone):
            if frame.text:
                out.write("\n")
        elif isinstance(frame, TurnMetrics):
            self._say(f"[{frame.summary()}]")
        elif isinstance(frame, TurnFailed):
            self._say(f"(could not answer: {frame.message})")
        elif isinstance(frame, Interrupt) and frame.reason:
            self._say(f"\n({frame.reason})")

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)
