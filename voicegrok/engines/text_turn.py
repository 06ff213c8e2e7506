"""Do the words read as a finished request? A small LLM's answer (a blocking engine).

The end-of-turn model hears the voice; this reads the transcript. It puts the words in the
model's chat template as the user's message, without the message's end, and gives the
probability that the model ends the message there (its template's end-of-turn token), the
way LiveKit's turn detector does with its fine-tuned SmolLM2-135M. The embedded
SmolLM2-135M-Instruct is not fine-tuned for it and is a weak judge of most words, but a
plain question reads as finished to it ("What is the capital of France?": 0.66), and the
first half of a sentence seldom does ("Can you tell me?": 0.003; on the turn-taking set no
first half scored over 0.31). So the words are only heard where the voice leaves doubt:
see :func:`~voicegrok.endpointing.when_to_answer`.

The system prompt and the start of the user's message are evaluated once and kept in the
KV cache; each call evaluates only the words (10-20 tokens: 40-50 ms on one core here).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from .chat_format import chat_formatter
from .decoder import chance, last_logits
from .llama import load_llama

__all__ = ["TextTurn"]

SYSTEM = "You are a helpful voice assistant."
_MARK = "\x00words\x00"
MAX_WORDS_TOKENS = 96
"""Only the last words are read (a long turn's end is in them)."""


class TextTurn:
    """``probability(text)``: how likely the words are a finished message."""

    def __init__(self, model_path: Path, *, threads: int = 1) -> None:
        self.path = model_path
        self._llm: Any = load_llama(
            model_path, n_ctx=MAX_WORDS_TOKENS + 64, threads=threads, seed=0
        )
        chat = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": _MARK}]
        result = chat_formatter(self._llm)(messages=chat, tools=None)
        before, after = result.prompt.split(_MARK)
        self._prefix = self._tokens(before, bos=not result.added_special)
        ends = self._tokens(after, bos=False)
        if not ends:
            raise ValueError(f"{model_path}: its chat template does not end a message")
        self._end = ends[0]
        self._lock = threading.Lock()
        self._llm.eval(self._prefix)

    def _tokens(self, text: str, *, bos: bool) -> list[int]:
        return list(self._llm.tokenize(text.encode("utf-8"), add_bos=bos, special=True))

    def probability(self, text: str) -> float:
        """P(the message ends after ``text``), 0 for no words."""
        words = self._llm.tokenize(text.strip().encode("utf-8"), add_bos=False, special=False)
        if not words:
            return 0.0
        words = words[-MAX_WORDS_TOKENS:]
        with self._lock:
            llm = self._llm
            llm.n_tokens = len(self._prefix)  # eval() drops the cache after it
            llm.eval(words)
            return chance(last_logits(llm.ctx, llm.n_vocab()), self._end)
