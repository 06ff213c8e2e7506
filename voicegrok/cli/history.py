"""Kept conversations on the command line: ``voicegrok history``, and the ``--resume`` and
``--no-history`` of ``ask``, ``talk`` and the UI."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from ..config import Settings
from ..conversation import Conversation
from ..errors import UsageError
from ..history import History, Recorder, SavedTurn

__all__ = ["cmd_history", "kept_conversation", "model_names"]


def model_names(settings: Settings) -> dict[str, str]:
    """The models of a conversation, as they are kept with it."""
    from .. import models

    return {
        kind: Path(spec).name if spec else models.DEFAULTS[kind].name
        for kind, spec in (
            ("llm", settings.llm_model),
            ("stt", settings.stt_model),
            ("tts", settings.voice),
        )
    }


def kept_conversation(
    args: argparse.Namespace, settings: Settings, source: str
) -> tuple[Conversation, Recorder | None]:
    """The conversation of this run, kept in the history unless ``--no-history``, and
    continuing a kept one with ``--resume [ID]`` (its turns back in the LLM's context)."""
    conversation = Conversation(settings.system_prompt)
    resume = args.resume
    if isinstance(resume, str) and resume != "latest":
        raise UsageError(f"--resume {resume!r}: not a conversation id (voicegrok history)")
    if args.no_history:
        if resume is not None:
            raise UsageError("--resume continues a kept conversation: drop --no-history")
        return conversation, None
    history = History()
    chosen = None
    if resume is not None:
        try:
            chosen, conversation.turns = history.messages(None if resume == "latest" else resume)
        except UsageError:
            history.close()
            raise
    recorder = history.record(source, model_names(settings), chosen)
    conversation.journal = recorder
    return conversation, recorder


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


def _markdown(turns: list[SavedTurn]) -> str:
    lines: list[str] = []
    for turn in turns:
        lines += [f"**you** ({_when(turn.asked)}): {turn.question}", ""]
        answer = turn.answer if turn.answer is not None else "*(no answer: it was cut short)*"
        note = " *(interrupted: what was heard)*" if turn.interrupted else ""
        lines += [f"**voicegrok**{note}:", "", answer or "*(nothing heard)*", ""]
    return "\n".join(lines)


async def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    history = History()
    try:
        if args.clear:
            n = history.clear()
            print(f"forgot {n} conversation{'s' if n != 1 else ''} ({history.path})")
            return 0
        if args.id is not None:
            chosen, _ = history.messages(args.id)
            turns = history.turns(chosen)
            if args.json:
                print(json.dumps([asdict(t) for t in turns], indent=2, ensure_ascii=False))
            else:
                print(_markdown(turns), end="")
            return 0
        found = history.conversations(args.limit)
        if args.json:
            print(json.dumps([asdict(c) for c in found], indent=2, ensure_ascii=False))
        elif not found:
            print(f"no conversations kept yet ({history.path})")
        else:
            for c in found:
                first = (
                    c.first_question if len(c.first_question) <= 60 else c.first_question[:59] + "…"
                )
                print(f"{c.id:>5}  {_when(c.started)}  {c.source:<5} {c.turns:>3} turns  {first}")
            print(f"\nvoicegrok history ID prints one; --resume ID continues it ({history.path})")
        return 0
    finally:
        history.close()
