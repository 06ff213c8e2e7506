"""Speculative decoding's logic on a scripted model (the real models: test_llm_speculative)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence

import pytest

from voicegrok.engines.speculative import PromptLookup, SpeculationStats, speculate


def next_of(history: Sequence[int]) -> int:
    """A deterministic 'model': the token after ``history``."""
    return (sum(history[-3:]) * 7 + len(history)) % 11


class ScriptedDecoder:
    """A KV cache whose logits rows are :func:`next_of` the history up to each token."""

    ctx = None

    def __init__(self, prompt: list[int], n_ctx: int = 10_000) -> None:
        self.tokens = list(prompt)
        self.n_ctx = n_ctx
        self.rows: list[int] = [next_of(self.tokens)]
        self.batches: list[list[int]] = []

    @property
    def room(self) -> int:
        return self.n_ctx - len(self.tokens)

    def evaluate_all(self, tokens: Sequence[int]) -> None:
        self.batches.append(list(tokens))
        self.rows = []
        for t in tokens:
            self.tokens.append(t)
            self.rows.append(next_of(self.tokens))

    def drop(self, n: int) -> None:
        if n > 0:
            del self.tokens[-n:]


class Reader:
    def __init__(self, decoder: ScriptedDecoder) -> None:
        self.decoder = decoder

    def sample(self, ctx: object, index: int = -1) -> int:
        return self.decoder.rows[index]


class Oracle:
    """Guesses right for ``right`` tokens, then wrong once, in every draft."""

    def __init__(self, right: int) -> None:
        self.right = right

    def draft(self, history: Sequence[int], n: int) -> list[int]:
        h = list(history)
        out = []
        for i in range(n):
            t = next_of(h) if i < self.right else (next_of(h) + 1) % 11
            out.append(t)
            h.append(t)
        return out


class Never:
    def draft(self, history: Sequence[int], n: int) -> list[int]:
        return []


def run(drafter: object, count: int = 60) -> tuple[list[int], ScriptedDecoder, SpeculationStats]:
    decoder = ScriptedDecoder([1, 2, 3])
    stats = SpeculationStats()
    out = list(
        itertools.islice(speculate(decoder, Reader(decoder), drafter, stats=stats), count)  # type: ignore[arg-type]
    )
    return out, decoder, stats


@pytest.mark.parametrize("right", [0, 1, 3, 100])
def test_the_tokens_are_the_models_own_whatever_the_guesses(right: int) -> None:
    plain, _, plain_stats = run(Never())
    guessed, decoder, stats = run(Oracle(right))
    assert guessed == plain
    # the cache holds the prompt and what was yielded (the last token is not evaluated
    # yet), never a rejected guess
    assert decoder.tokens[3 : 3 + len(guessed) - 1] == guessed[:-1]
    assert plain_stats.rounds == len(plain) - 1
    if right >= 6:
        # every guess checked was kept (the last draft was cut short by the consumer)
        assert stats.accepted >= stats.drafted - 6
        assert stats.rounds < len(plain) / 4  # six guesses at a time, all kept
    if right == 0:
        assert stats.accepted == 0


class SeededReader(Reader):
    """Samples: one seeded draw per token, as llama.cpp's dist sampler makes."""

    def __init__(self, decoder: ScriptedDecoder) -> None:
        super().__init__(decoder)
        self.rng = random.Random(7)

    def sample(self, ctx: object, index: int = -1) -> int:
        return (self.decoder.rows[index] + self.rng.choice((0, 0, 0, 1, 2))) % 11


def test_seeded_sampling_draws_the_same_tokens_with_guesses() -> None:
    def draw(drafter: object) -> list[int]:
        decoder = ScriptedDecoder([4, 5, 6])
        tokens = speculate(decoder, SeededReader(decoder), drafter)  # type: ignore[arg-type]
        return list(itertools.islice(tokens, 80))

    plain = draw(Never())
    assert draw(Oracle(2)) == plain
    assert draw(PromptLookup(ngram=2, min_ngram=1)) == plain


def test_right_guesses_save_batches_and_wrong_ones_shorten_the_next_draft() -> None:
    _, decoder, stats = run(Oracle(2), count=40)
    assert stats.accepted > 0
    assert stats.rounds < 40
    # after a miss with 2 kept, it asks for 2 + 2 = 4 (not the full 6)
    assert max(len(b) for b in decoder.batches[1:]) <= 1 + 6
    assert {len(b) for b in decoder.batches[2:]} == {1 + 4}


def test_the_first_draft_is_short_and_a_kept_one_lets_the_next_be_long() -> None:
    """The first words are on the way to the first sound: a long first guess that fails
    costs a batch of 7 there."""
    _, decoder, _ = run(Oracle(100), count=30)
    assert [len(b) for b in decoder.batches[:3]] == [1 + 2, 1 + 6, 1 + 6]
    _, decoder, _ = run(Oracle(0), count=10)
    assert len(decoder.batches[0]) == 1 + 2  # a wrong first guess costs a batch of 3
    assert {len(b) for b in decoder.batches[1:]} == {1 + 2}  # then 0 kept + 2, and so on


def test_it_stops_at_the_end_of_the_context() -> None:
    decoder = ScriptedDecoder([1, 2, 3], n_ctx=20)
    out = list(speculate(decoder, Reader(decoder), Oracle(100)))  # type: ignore[arg-type]
    assert len(decoder.tokens) <= 20
    assert len(out) == 20 - 3 + 1  # the last token sampled needs no room


def test_prompt_lookup_proposes_what_followed_the_last_words_before() -> None:
    lookup = PromptLookup(ngram=3, min_ngram=2)
    history = [5, 6, 7, 8, 9, 10, 1, 6, 7]
    assert lookup.draft(history, 3) == [8, 9, 10]
    assert lookup.draft(history, 1) == [8]
    # the latest earlier match wins
    assert lookup.draft([1, 2, 3, 1, 2, 4, 1, 2], 2) == [4, 1]
    # no earlier occurrence of the last two tokens: no guess
    assert lookup.draft([1, 2, 3, 4, 5], 4) == []
    assert lookup.draft([1, 2], 4) == []
    assert lookup.draft(history, 0) == []
