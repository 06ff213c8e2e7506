"""Speculative decoding: guess a few tokens cheaply, check them all in one batch.

On a CPU a batch of a few tokens costs less than as many single steps (the weights are read
once), so when the guesses are right several tokens come for little more than one. A
*drafter* guesses:

- :class:`PromptLookup` finds the last few tokens earlier in the conversation and proposes
  what followed them there (an answer that repeats a table, a list or the question: "put it
  in a table", "add a column"); it costs nothing when it finds no match;
- :class:`DraftModel` lets a small model with the same vocabulary (Qwen2.5-0.5B for the
  1.5B) write the next tokens greedily, stopping when it is unsure.

:func:`speculate` verifies the guesses with the big model's own sampler: row by row, it
samples the big model's token and keeps going while that token is the guess. Every token
it yields is the one the big model would have sampled without guesses (same logits, the
same sampler chain, one draw per token), so greedy answers are the same token for token,
and so are seeded ones. For a drafter that guesses deterministically this is standard
speculative sampling: a guess ``d`` is kept with probability ``p(d)`` and otherwise the
token is drawn from ``p`` without ``d``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..errors import ModelError
from .decoder import Decoder, chance, last_logits

__all__ = [
    "DraftModel",
    "Drafter",
    "PromptLookup",
    "SpeculationStats",
    "speculate",
]


class Drafter(Protocol):
    def draft(self, history: Sequence[int], n: int) -> list[int]:
        """Up to ``n`` tokens guessed to follow ``history`` (may be none)."""
        ...


class PromptLookup:
    """Guesses from the conversation itself: the latest earlier place where its last
    ``ngram`` tokens (down to ``min_ngram``) occur, and what followed them there."""

    def __init__(self, ngram: int = 4, min_ngram: int = 3) -> None:
        self.ngram = ngram
        self.min_ngram = min_ngram

    def draft(self, history: Sequence[int], n: int) -> list[int]:
        if n <= 0 or len(history) <= self.min_ngram:
            return []
        seq = np.asarray(history, dtype=np.int64)
        for size in range(min(self.ngram, len(seq) - 1), self.min_ngram - 1, -1):
            tail = seq[-size:]
            # earlier starts of the tail, the latest first (not the tail itself)
            starts = np.flatnonzero(seq[: len(seq) - size] == tail[0])[::-1]
            for s in starts:
                if np.array_equal(seq[s : s + size], tail):
                    follow = seq[s + size : s + size + n]
                    if len(follow):
                        return [int(t) for t in follow]
        return []


class DraftModel:
    """A small model's greedy continuation, as long as it is at least ``p_min`` sure of
    each token. It keeps its own KV cache of the conversation (only new tokens are
    evaluated each time)."""

    def __init__(self, llm: Any, *, p_min: float = 0.6) -> None:
        import llama_cpp

        self._c = llama_cpp
        self._llm = llm
        self._decoder = Decoder(llm)
        self._ctx = llm.ctx
        self._n_vocab = int(llm.n_vocab())
        self.p_min = p_min

    def check_vocabulary(self, target: Any, name: str) -> None:
        """A ModelError unless ``target`` (a ``llama_cpp.Llama``) has this vocabulary."""
        c = self._c
        ours = c.llama_model_get_vocab(self._llm.model)
        theirs = c.llama_model_get_vocab(target.model)
        n = c.llama_vocab_n_tokens(ours)
        same = n == c.llama_vocab_n_tokens(theirs) and all(
            c.llama_vocab_get_text(ours, t) == c.llama_vocab_get_text(theirs, t)
            for t in range(0, n, max(1, n // 2000))
        )
        if not same:
            raise ModelError(
                f"{name}: its vocabulary is not the LLM's, it cannot draft for it; "
                "pass --draft a model of the same family (or lookup, or none)"
            )

    def draft(self, history: Sequence[int], n: int) -> list[int]:
        if n <= 0 or len(history) + n > self._decoder.n_ctx:
            return []
        self._decoder.evaluate(history)
        out: list[int] = []
        while True:
            logits = last_logits(self._ctx, self._n_vocab)
            best = int(logits.argmax())
            if chance(logits, best) < self.p_min:
                break
            out.append(best)
            if len(out) == n:
                break
            self._decoder.evaluate_next(best)
        return out


@dataclass
class SpeculationStats:
    """What the guesses were worth in one answer."""

    rounds: int = 0
    """Batches evaluated by the big model."""
    drafted: int = 0
    accepted: int = 0
    tokens: int = 0

    @property
    def acceptance(self) -> float:
        return self.accepted / self.drafted if self.drafted else 0.0


class _Sampler(Protocol):
    def sample(self, ctx: Any, index: int = -1) -> int: ...


def speculate(
    decoder: Decoder,
    sampler: _Sampler,
    drafter: Drafter,
    *,
    max_draft: int = 6,
    first_draft: int = 2,
    between: Callable[[], None] = lambda: None,
    stats: SpeculationStats | None = None,
) -> Iterator[int]:
    """The big model's tokens, from the logits the decoder holds now (after the prompt),
    for as long as the consumer takes them. ``between`` runs before each batch (the
    engine's core sharing). The decoder's cache may hold tokens past the last one
    yielded when the consumer stops (the next prompt's prefix match drops them).

    The first draft holds at most ``first_draft`` guesses; each draft kept whole lets the
    next one hold ``max_draft``. The first words are on the way to the first sound: on the
    rig (SmolLM2, 2 cores, the live loop), a batch of 7 tokens took 37-57 ms against 8-13
    ms for one, and a first draft of 6 guesses from the question, rejected, put 30-45 ms
    before the first clause in 3 turns of 5."""
    stats = stats if stats is not None else SpeculationStats()
    drafts: list[int] = []
    want = min(first_draft, max_draft)
    accepted_before = 0
    while True:
        # rows of the last batch: row i gives the token after batch[i]; drafts[i] was
        # guessed for it
        token = -1
        for i in range(len(drafts) + 1):
            token = sampler.sample(decoder.ctx, i if drafts else -1)
            stats.tokens += 1
            yield token
            if i < len(drafts) and token == drafts[i]:
                stats.accepted += 1
                continue
            decoder.drop(len(drafts) - i)  # the guesses after the last one kept
            break
        if drafts:
            kept = stats.accepted - accepted_before
            # ask for one more than was kept last time, up to max_draft
            want = min(max_draft, kept + 2) if kept < len(drafts) else max_draft
        room = decoder.room - 1
        if room <= 0:
            return
        history = [*decoder.tokens, token]
        drafts = drafter.draft(history, min(want, room)) if want > 0 else []
        stats.drafted += len(drafts)
        stats.rounds += 1
        accepted_before = stats.accepted
        between()
        decoder.evaluate_all([token, *drafts])
