"""Conversations are kept: each turn written to SQLite as it happens, listed and printed by
``voicegrok history``, continued with ``--resume``, kept out with ``--no-history``."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voicegrok.assistant import Assistant, Engines, load_engines
from voicegrok.config import Settings
from voicegrok.conversation import Conversation
from voicegrok.frames import LLMDone, TurnFailed
from voicegrok.history import History
from voicegrok.testing import collect

from .conftest import no_sessions, serve, typed_turn


@pytest.fixture
def history(tmp_path: Path) -> Any:
    h = History(tmp_path / "h.sqlite3")
    yield h
    h.close()


def test_every_change_of_a_conversation_is_written_as_it_happens(history: History) -> None:
    recorder = history.record("talk", {"llm": "smollm2-135m"})
    c = Conversation("be brief", journal=recorder)
    c.add_user("Plan a day in Queens.", 1)
    recorder.flush()
    assert [t.question for t in history.turns(recorder.conversation or 0)] == [
        "Plan a day in Queens."
    ]  # the question is on disk before any answer
    c.add_assistant("Start at Flushing. Then the museum.", 1)
    c.keep_heard(1, "Start at Flushing.")  # interrupted: only this was played
    recorder.metrics({"turn_id": 1, "first_audio_ms": 410.0, "interrupted": True})
    c.add_user("uh", 2)  # a turn withdrawn: the person went on speaking
    c.forget_turn(2)
    c.add_user("And in Brooklyn?", 3)
    c.add_assistant("Try Red Hook.", 3)
    recorder.flush()
    assert recorder.conversation is not None
    turns = history.turns(recorder.conversation)
    assert [(t.question, t.answer, t.interrupted) for t in turns] == [
        ("Plan a day in Queens.", "Start at Flushing.", True),
        ("And in Brooklyn?", "Try Red Hook.", False),
    ]
    assert turns[0].metrics == {"turn_id": 1, "first_audio_ms": 410.0, "interrupted": True}
    [saved] = history.conversations()
    assert (saved.source, saved.turns, saved.models) == ("talk", 2, {"llm": "smollm2-135m"})
    assert history.messages() == (
        recorder.conversation,
        [
            {"role": "user", "content": "Plan a day in Queens."},
            {"role": "assistant", "content": "Start at Flushing."},
            {"role": "user", "content": "And in Brooklyn?"},
            {"role": "assistant", "content": "Try Red Hook."},
        ],
    )
    c.reset()  # a new conversation (Ctrl+N): the next turn starts another one
    c.add_user("Hello again.", 1)
    recorder.flush()
    assert [x.turns for x in history.conversations()] == [1, 2]  # newest first
    assert history.clear() == 2
    assert history.conversations() == []


def test_the_database_is_in_wal_mode_and_a_broken_file_is_one_line(tmp_path: Path) -> None:
    h = History(tmp_path / "h.sqlite3")
    h.close()
    with sqlite3.connect(tmp_path / "h.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    bad = tmp_path / "bad.sqlite3"
    bad.write_bytes(b"not a database" * 100)
    with pytest.raises(Exception, match=r"cannot keep the conversation history.*--no-history"):
        History(bad)


def test_kill_9_while_answering_keeps_the_question(tmp_path: Path) -> None:
    """A crash loses at most the answer being made: the question is on disk already."""
    env = dict(os.environ, VOICEGROK_DATA_DIR=str(tmp_path))
    question = "Tell me a very long story about a dragon, in many paragraphs."
    proc = subprocess.Popen(
        [sys.executable, "-m", "voicegrok", "ask", "--no-speak", "-q", question],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    database = tmp_path / "history.sqlite3"
    try:
        assert proc.stdout is not None
        proc.stdout.read(1)  # the answer has started streaming
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        proc.kill()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    h = History(database)
    try:
        [saved] = h.conversations()
        [turn] = h.turns(saved.id)
        assert turn.question == question
        assert turn.answer is None  # never finished
    finally:
        h.close()


def test_ask_resume_and_no_history_as_a_user_would(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VOICEGROK_DATA_DIR", str(tmp_path / "data"))
    assert cli("history").out.startswith("no conversations kept yet")
    assert cli("ask", "--no-speak", "-q", "What is the capital of France?").code == 0
    r = cli("ask", "--no-speak", "-q", "--resume", "What is the capital of Italy?")
    assert r.code == 0, r.err
    assert cli("ask", "--no-speak", "-q", "--no-history", "Say hi.").code == 0
    listed = json.loads(cli("history", "--json").out)
    assert [(c["turns"], c["first_question"]) for c in listed] == [
        (2, "What is the capital of France?")
    ]
    printed = cli("history", str(listed[0]["id"])).out
    assert "**you**" in printed and "capital of Italy" in printed and "Paris" in printed
    assert "Say hi." not in printed
    r = cli("ask", "--resume", "7", "x")
    assert r.code == 1 and "no conversation 7" in r.err and "Traceback" not in r.err
    r = cli("ask", "--resume", "--no-history", "x")
    assert r.code == 1 and "drop --no-history" in r.err
    assert "forgot 1 conversation" in cli("history", "--clear").out
    assert json.loads(cli("history", "--json").out) == []


async def test_a_long_conversation_in_a_small_context_never_fails(history: History) -> None:
    """With a 512-token context, older turns are dropped from the prompt at turn
    boundaries and every turn is answered; the database keeps every turn in full."""
    settings = Settings(n_ctx=512, max_tokens=100)
    recorder = history.record("ask", {"llm": "smollm2-135m"})
    conversation = Conversation(settings.system_prompt, journal=recorder)
    small = load_engines(settings, stt=False, tts=False)
    try:
        async with Assistant(small, settings, conversation) as assistant:
            for i in range(7):
                frames = await collect(assistant.ask(f"Describe city number {i} in detail."))
                assert not [f for f in frames if isinstance(f, TurnFailed)], i
                assert any(isinstance(f, LLMDone) for f in frames)
        recorder.flush()
        assert small.llm is not None
        kept = small.llm.count_tokens(conversation.messages())
        assert kept > 512  # more history than the context holds: the prompt was trimmed
        assert recorder.conversation is not None
        assert len(history.turns(recorder.conversation)) == 7
    finally:
        small.close()


async def test_serve_keeps_conversations_only_when_asked(engines: Engines, tmp_path: Path) -> None:
    """serve --history keeps each session's turns with their metrics; by default nothing."""
    history = History(tmp_path / "h.sqlite3")
    try:
        async with serve(engines, history=history) as server:
            done = await typed_turn(server, "What is the capital of France?")
            assert done["response"]["status"] == "completed"
            await no_sessions(server)
        async with serve(engines) as server:
            await typed_turn(server, "Not kept.")
        [kept] = history.conversations()
        [turn] = history.turns(kept.id)
        assert (kept.source, turn.question) == ("serve", "What is the capital of France?")
        assert turn.answer and turn.metrics and turn.metrics["n_tokens"] > 0
    finally:
        history.close()
