"""Conversations kept: every turn written to a SQLite database as it happens.

The database (``history.sqlite3`` in the user data folder, or ``$VOICEGROK_DATA_DIR``) is
an adapter at the edge: a :class:`Recorder` is the :class:`~voicegrok.conversation.Journal`
of a live :class:`~voicegrok.conversation.Conversation`, and each change of it (a question,
an answer, what was heard of it, a turn withdrawn, the turn's metrics) is one transaction,
written on a thread of its own so that the event loop never waits for the disk. The
question is written when it is asked, so a crash (even ``kill -9``) loses at most the
answer being generated. WAL mode: readers (``voicegrok history``) never block the writer.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import platformdirs

from .conversation import Message
from .errors import UsageError, first_line

__all__ = ["History", "Recorder", "SavedConversation", "SavedTurn", "default_path"]

T = TypeVar("T")
log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    source TEXT NOT NULL,
    models TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    id INTEGER PRIMARY KEY,
    conversation INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    asked REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT,
    interrupted INTEGER NOT NULL DEFAULT 0,
    metrics TEXT,
    tools TEXT
);
CREATE INDEX IF NOT EXISTS turns_of_conversation ON turns (conversation, id);
"""


def default_path() -> Path:
    """Where conversations are kept: ``$VOICEGROK_DATA_DIR`` or the user data folder."""
    folder = os.environ.get("VOICEGROK_DATA_DIR") or platformdirs.user_data_dir("voicegrok")
    return Path(folder) / "history.sqlite3"


@dataclass(frozen=True)
class SavedTurn:
    asked: float
    question: str
    answer: str | None
    """None: the answer was never finished (the program stopped while it was generated)."""
    interrupted: bool
    metrics: dict[str, Any] | None
    tools: list[dict[str, Any]] = field(default_factory=list)
    """The tools called for the answer: name, arguments, output."""


@dataclass(frozen=True)
class SavedConversation:
    id: int
    started: float
    source: str
    models: dict[str, str]
    turns: int
    first_question: str


def _log_failure(future: Future[Any]) -> None:
    if not future.cancelled() and (e := future.exception()) is not None:
        log.warning("the conversation history was not written: %s", first_line(e))


class History:
    """The database of kept conversations. Every call may come from any thread; the
    database is used by one thread of its own."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_path()
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="voicegrok-history")
        self._db: sqlite3.Connection | None = None
        try:
            self._call(self._open)
        except (OSError, sqlite3.Error) as e:
            self._thread.shutdown()
            raise UsageError(
                f"{self.path}: cannot keep the conversation history ({first_line(e)}); "
                "fix or remove the file, or run with --no-history"
            ) from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)  # autocommit: one per event
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # WAL: a crashed process loses nothing
        db.execute("PRAGMA foreign_keys=ON")
        db.executescript(_SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(turns)")}
        if "tools" not in columns:  # a database from before tools
            db.execute("ALTER TABLE turns ADD COLUMN tools TEXT")
        self._db = db

    def _call(self, work: Callable[[], T]) -> T:
        return self._thread.submit(work).result()

    def _later(self, work: Callable[[sqlite3.Connection], T]) -> Future[T]:
        """Run ``work`` on the database thread, as its own transaction (a failure is
        logged: the conversation goes on without it)."""

        def run() -> T:
            assert self._db is not None
            with self._db:  # BEGIN ... COMMIT (ROLLBACK on an error)
                self._db.execute("BEGIN")
                return work(self._db)

        future = self._thread.submit(run)
        future.add_done_callback(_log_failure)
        return future

    def close(self) -> None:
        """Write what is queued, then close."""

        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        self._thread.submit(close)
        self._thread.shutdown(wait=True)

    # ------------------------------------------------------------------ writing

    def record(self, source: str, models: Mapping[str, str], resume: int | None = None) -> Recorder:
        """A recorder for a new conversation (``source``: talk, ui, ask, serve...), or for
        the kept conversation ``resume``."""
        return Recorder(self, source, dict(models), resume)

    # ------------------------------------------------------------------ reading

    def _rows(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        def read() -> list[tuple[Any, ...]]:
            assert self._db is not None
            return self._db.execute(sql, params).fetchall()

        return self._call(read)

    def conversations(self, limit: int = 20) -> list[SavedConversation]:
        """The most recent conversations that have a turn, newest first."""
        rows = self._rows(
            "SELECT c.id, c.started, c.source, c.models, count(t.id), "
            "(SELECT question FROM turns WHERE conversation = c.id ORDER BY id LIMIT 1) "
            "FROM conversations c JOIN turns t ON t.conversation = c.id "
            "GROUP BY c.id ORDER BY max(t.id) DESC LIMIT ?",
            limit,
        )
        return [
            SavedConversation(i, started, source, json.loads(models), n, first or "")
            for i, started, source, models, n, first in rows
        ]

    def latest(self) -> int | None:
        found = self.conversations(1)
        return found[0].id if found else None

    def turns(self, conversation: int) -> list[SavedTurn]:
        rows = self._rows(
            "SELECT asked, question, answer, interrupted, metrics, tools FROM turns "
            "WHERE conversation = ? ORDER BY id",
            conversation,
        )
        return [
            SavedTurn(asked, q, a, bool(i), json.loads(m) if m else None, json.loads(t or "[]"))
            for asked, q, a, i, m, t in rows
        ]

    def messages(self, conversation: int | None = None) -> tuple[int, list[Message]]:
        """The kept conversation (the most recent when None) as messages for the LLM."""
        chosen = self.latest() if conversation is None else conversation
        turns = self.turns(chosen) if chosen is not None else []
        if chosen is None or not turns:
            which = (
                "no conversation kept yet"
                if conversation is None
                else f"no conversation {conversation}"
            )
            raise UsageError(f"{which} in {self.path}; voicegrok history lists them")
        messages: list[Message] = []
        for turn in turns:
            messages.append({"role": "user", "content": turn.question})
            if turn.answer:
                messages.append({"role": "assistant", "content": turn.answer})
        return chosen, messages

    def clear(self) -> int:
        """Forget every conversation; how many there were."""

        def clear(db: sqlite3.Connection) -> int:
            n = db.execute("SELECT count(*) FROM conversations").fetchone()[0]
            db.execute("DELETE FROM turns")
            db.execute("DELETE FROM conversations")
            return int(n)

        n = self._later(clear).result()
        self._call(lambda: self._db.execute("VACUUM") if self._db is not None else None)
        return n


class Recorder:
    """Writes one conversation as it happens: the journal of a live ``Conversation``.

    Turn ids are those of this process's turns; each is mapped to its row on the database
    thread, in order, so the calls return at once."""

    def __init__(
        self, history: History, source: str, models: dict[str, str], resume: int | None
    ) -> None:
        self.history = history
        self._source, self._models = source, models
        self._rows: dict[int, int] = {}
        self.conversation: int | None = resume
        """The conversation's id (None until its first turn is written)."""

    def _turn(self, turn_id: int, sql: str, *params: object) -> None:
        def work(db: sqlite3.Connection) -> None:
            row = self._rows.get(turn_id)
            if row is not None:
                db.execute(sql, (*params, row))

        self.history._later(work)

    def user(self, turn_id: int, text: str) -> None:
        def work(db: sqlite3.Connection) -> None:
            if self.conversation is None:
                self.conversation = db.execute(
                    "INSERT INTO conversations (started, source, models) VALUES (?, ?, ?)",
                    (time.time(), self._source, json.dumps(self._models)),
                ).lastrowid
            cursor = db.execute(
                "INSERT INTO turns (conversation, asked, question) VALUES (?, ?, ?)",
                (self.conversation, time.time(), text),
            )
            assert cursor.lastrowid is not None
            self._rows[turn_id] = cursor.lastrowid

        self.history._later(work)

    def assistant(self, turn_id: int, text: str) -> None:
        self._turn(turn_id, "UPDATE turns SET answer = ? WHERE id = ?", text)

    def tool(self, turn_id: int, name: str, arguments: str, output: str) -> None:
        call = json.dumps({"name": name, "arguments": arguments, "output": output})
        self._turn(
            turn_id,
            "UPDATE turns SET tools = json_insert(coalesce(tools, '[]'), '$[#]', json(?)) "
            "WHERE id = ?",
            call,
        )

    def heard(self, turn_id: int, text: str) -> None:
        self._turn(turn_id, "UPDATE turns SET answer = ?, interrupted = 1 WHERE id = ?", text)

    def forget(self, turn_id: int) -> None:
        self._turn(turn_id, "DELETE FROM turns WHERE id = ?")

    def metrics(self, row: Mapping[str, object]) -> None:
        """The turn's metrics row (as ``--metrics`` writes it; it names its turn)."""
        turn_id = row.get("turn_id")
        if not isinstance(turn_id, int):
            return
        interrupted = 1 if row.get("interrupted") else 0
        self._turn(
            turn_id,
            "UPDATE turns SET metrics = ?, interrupted = max(interrupted, ?) WHERE id = ?",
            json.dumps(dict(row)),
            interrupted,
        )

    def reset(self, conversation: int | None = None) -> None:
        """A new conversation: the next turn starts it (or continues the kept one,
        ``conversation``)."""

        def work(db: sqlite3.Connection) -> None:
            self.conversation = conversation
            self._rows.clear()

        self.history._later(work)

    def flush(self) -> None:
        """Wait until everything said so far is written."""
        self.history._later(lambda db: None).result()
