"""Multi-turn conversation history, trimmed to fit the model's context window."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

__all__ = ["DEFAULT_SYSTEM_PROMPT", "Conversation", "Message"]

DEFAULT_SYSTEM_PROMPT = (
    "You are voicegrok, a friendly voice assistant. Your answers are read aloud, so answer "
    "in short, clear spoken sentences and start with the most useful part. Use a Markdown "
    "table or a list only when the user asks for one."
)


class Message(TypedDict):
    role: str
    content: str


@dataclass
class Conversation:
    """The messages of one conversation. Not thread-safe: owned by one LLM stage."""

    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    turns: list[Message] = field(default_factory=list)

    def add_user(self, text: str) -> None:
        self.turns.append({"role": "user", "content": text})

    def add_assistant(self, text: str) -> None:
        self.turns.append({"role": "assistant", "content": text})

    def replace_last_assistant(self, text: str) -> None:
        """Keep only ``text`` of the answer that ends the history (what was spoken before a
        barge-in). Nothing heard: the answer is dropped (an empty answer in the history
        teaches a small model to answer the next question with nothing). Does nothing when
        the history does not end with an answer."""
        if self.turns and self.turns[-1]["role"] == "assistant":
            if text.strip():
                self.turns[-1]["content"] = text
            else:
                self.turns.pop()

    def forget_exchange(self, user_text: str) -> None:
        """Drop the newest question, if it is ``user_text``, and its answer if it has one."""
        turns = self.turns
        if turns and turns[-1]["role"] == "assistant" and len(turns) > 1:
            if turns[-2]["role"] == "user" and turns[-2]["content"] == user_text:
                del turns[-2:]
        elif turns and turns[-1]["role"] == "user" and turns[-1]["content"] == user_text:
            turns.pop()

    def reset(self) -> None:
        self.turns.clear()

    def messages(
        self, count_tokens: Callable[[list[Message]], int] | None = None, budget: int = 0
    ) -> list[Message]:
        """The system prompt and the most recent turns whose tokens fit in ``budget``.

        Whole older exchanges are dropped first; the newest message is always kept (the
        caller checks whether it alone fits), so a long conversation never fails for lack
        of context.
        """
        system: list[Message] = [{"role": "system", "content": self.system_prompt}]
        turns = list(self.turns)
        if count_tokens is None or budget <= 0:
            return system + turns
        while len(turns) > 1 and count_tokens(system + turns) > budget:
            turns.pop(0)
            # never start with an orphan assistant message
            while len(turns) > 1 and turns[0]["role"] != "user":
                turns.pop(0)
        return system + turns
