"""Multi-turn conversation history, trimmed to fit the model's context window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypedDict

__all__ = ["DEFAULT_SYSTEM_PROMPT", "Conversation", "Journal", "Message"]

DEFAULT_SYSTEM_PROMPT = (
    "You are voicegrok, a friendly voice assistant. Your answers are read aloud, so answer "
    "in short, clear spoken sentences and start with the most useful part. Use a Markdown "
    "table or a list only when the user asks for one."
)


TOOL_CALL, TOOL_CALL_END = "<tool_call>", "</tool_call>"
"""How a call looks in the messages (as :mod:`voicegrok.tools.calls` reads it)."""


class Message(TypedDict):
    role: str
    content: str


class Journal(Protocol):
    """Told of every change of a conversation, as it happens (e.g. to keep it on disk)."""

    def user(self, turn_id: int, text: str) -> None: ...

    def assistant(self, turn_id: int, text: str) -> None: ...

    def tool(self, turn_id: int, name: str, arguments: str, output: str) -> None:
        """A tool was called for the answer (``arguments``: JSON)."""
        ...

    def heard(self, turn_id: int, text: str) -> None:
        """Only ``text`` of the answer was heard (it was interrupted)."""
        ...

    def forget(self, turn_id: int) -> None: ...

    def reset(self) -> None: ...


@dataclass
class Conversation:
    """The messages of one conversation.

    Not thread-safe: it is changed only on the event loop that runs its pipeline (the LLM
    stage adds messages there; the turn controller's history edits are applied there).
    Engine threads get copies (:meth:`snapshot`).

    Each message added for a turn is tagged with that turn's id, so a turn's edit (keep
    only what was heard, forget it) finds its own messages, whatever came after them.
    """

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    turns: list[Message] = field(default_factory=list)
    turn_ids: list[int] = field(default_factory=list)
    """The turn id of each message in ``turns`` (0: added without one)."""
    journal: Journal | None = field(default=None, repr=False, compare=False)
    """Told of each change made through the methods below (copies have none)."""
    sizes: dict[tuple[str, str], int] = field(default_factory=dict, repr=False, compare=False)
    """Tokens of each message alone, as the LLM counted it (see :meth:`messages`): shared
    with the snapshots, so that each message is counted once, not at every question."""

    def _add(self, role: str, text: str, turn_id: int) -> None:
        self._sync()
        self.turns.append({"role": role, "content": text})
        self.turn_ids.append(turn_id)

    def _sync(self) -> None:
        """``turns`` may be set or edited directly: untagged messages get id 0."""
        if len(self.turn_ids) != len(self.turns):
            self.turn_ids = (self.turn_ids + [0] * len(self.turns))[: len(self.turns)]

    def add_user(self, text: str, turn_id: int = 0) -> None:
        self._add("user", text, turn_id)
        if self.journal is not None:
            self.journal.user(turn_id, text)

    def add_assistant(self, text: str, turn_id: int = 0) -> None:
        self._add("assistant", text, turn_id)
        if self.journal is not None:
            self.journal.assistant(turn_id, text)

    def tool_used(
        self, turn_id: int, name: str, arguments: str, output: str, *, for_model: bool
    ) -> None:
        """A tool was called for turn ``turn_id``'s answer. ``for_model``: the model made
        the call, so the call and its result join the messages (it writes the answer from
        them); otherwise only the journal hears of it."""
        if for_model:
            self.tool_called(turn_id, name, arguments)
            self.tool_result(turn_id, output)
        if self.journal is not None:
            self.journal.tool(turn_id, name, arguments, output)

    def tool_called(self, turn_id: int, name: str, arguments: str) -> None:
        """The model's call (its result is to come, from a client: :meth:`tool_result`)."""
        call = f'{TOOL_CALL}{{"name": "{name}", "arguments": {arguments}}}{TOOL_CALL_END}'
        self._add("assistant", call, turn_id)

    def tool_result(self, turn_id: int, output: str) -> None:
        self._add("tool", output, turn_id)

    def snapshot(self) -> Conversation:
        """A copy, for work queued on another thread (this one may change meanwhile)."""
        self._sync()
        return Conversation(
            self.system_prompt, list(self.turns), list(self.turn_ids), sizes=self.sizes
        )

    def _indexes(self, turn_id: int, role: str | None = None) -> list[int]:
        self._sync()
        return [
            i
            for i, (m, t) in enumerate(zip(self.turns, self.turn_ids, strict=True))
            if t == turn_id and (role is None or m["role"] == role)
        ]

    def keep_heard(self, turn_id: int, text: str) -> None:
        """Keep only ``text`` of turn ``turn_id``'s answer, what the person heard. Nothing
        heard: the answer is dropped (an empty answer in the history teaches a small model
        to answer the next question with nothing); the question stays."""
        for i in reversed(self._indexes(turn_id, "assistant")):
            if self.turns[i]["content"].startswith(TOOL_CALL):
                continue  # the model's tool call, not words it said
            if text.strip():
                self.turns[i] = {"role": "assistant", "content": text.strip()}
            else:
                del self.turns[i], self.turn_ids[i]
        if self.journal is not None:
            self.journal.heard(turn_id, text.strip())

    def forget_turn(self, turn_id: int) -> None:
        """Turn ``turn_id`` never happened: its question and answer leave the history."""
        for i in reversed(self._indexes(turn_id)):
            del self.turns[i], self.turn_ids[i]
        if self.journal is not None:
            self.journal.forget(turn_id)

    def reset(self) -> None:
        self.turns.clear()
        self.turn_ids.clear()
        if self.journal is not None:
            self.journal.reset()

    def messages(
        self, count_tokens: Callable[[list[Message]], int] | None = None, budget: int = 0
    ) -> list[Message]:
        """The system prompt and the most recent turns whose tokens fit in ``budget``.

        Whole older exchanges are dropped first; the newest message is always kept (the
        caller checks whether it alone fits), so a long conversation never fails for lack
        of context.

        Where the history is cut does not change from one question to the next: the LLM
        keeps the prompt it evaluated last in its cache, and a prompt that starts
        elsewhere is evaluated whole again. Cutting just enough at each question did
        that once a conversation had filled its budget, at every question (SmolLM2, 2
        cores, 600 tokens of history: the first token 1.1-2.1 s instead of 0.1 s). So the
        cut is decided on the history before the newest question (the same history the
        LLM warms up while the answer before is spoken), only when that history leaves
        less than :data:`QUESTION_ROOM` of the budget, and only at fixed places: the
        first exchange after each half budget of tokens from the start. It then moves
        about half a budget at a time, once in several exchanges, after an answer.
        """
        system: list[Message] = [{"role": "system", "content": self.system_prompt}]
        turns = list(self.turns)
        if count_tokens is None or budget <= 0:
            return system + turns
        newest = turns[-1:] if turns and turns[-1]["role"] == "user" else []
        before = turns[: len(turns) - len(newest)]
        sizes = [self._size(m, count_tokens) for m in system + before]
        turns = before[_stable_cut(before, sizes, budget) :] + newest
        while len(turns) > 1 and count_tokens(system + turns) > budget:
            turns.pop(0)
            # never start with an orphan assistant message
            while len(turns) > 1 and turns[0]["role"] != "user":
                turns.pop(0)
        return system + turns

    def _size(self, message: Message, count_tokens: Callable[[list[Message]], int]) -> int:
        key = (message["role"], message["content"])
        size = self.sizes.get(key)
        if size is None:
            size = self.sizes[key] = count_tokens([message])
        return size


QUESTION_ROOM = 8
"""The history before a question is cut when it leaves less than 1/QUESTION_ROOM of the
budget for the question (see :meth:`Conversation.messages`)."""


def _stable_cut(turns: list[Message], sizes: list[int], budget: int) -> int:
    """Index of the first of ``turns`` kept: 0, or the first user message after a
    multiple of half the budget in tokens from the start, the earliest such place that
    leaves the rest within the budget less the question's room. ``sizes``: the tokens of
    the system prompt, then of each turn."""
    limit = budget - budget // QUESTION_ROOM
    total = sum(sizes)
    if total <= limit:
        return 0
    step = max(1, budget // 2)
    done, mark = 0, step
    cut = 0
    for i, (message, size) in enumerate(zip(turns, sizes[1:], strict=True)):
        if message["role"] == "user" and done >= mark:
            cut = i
            mark = (done // step + 1) * step
            if total - done <= limit:
                break
        done += size
    return cut
