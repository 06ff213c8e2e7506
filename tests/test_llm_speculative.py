"""Speculative decoding on the real models: the answers are the model's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from voicegrok import models
from voicegrok.config import Settings
from voicegrok.conversation import Conversation
from voicegrok.engines.llama import LlamaEngine, load_llama
from voicegrok.engines.speculative import DraftModel, PromptLookup
from voicegrok.errors import ModelError
from voicegrok.loading import drafter

SMALL = "smollm2-135m"


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    yield LlamaEngine(models.resolve("llm", SMALL), threads=2)


def answer(
    engine: LlamaEngine, conversation: Conversation, max_tokens: int = 160, temperature: float = 0.0
) -> str:
    """The answer, from an empty KV cache: llama.cpp's logits depend a little on how the
    cache was filled (a batch or single steps), so every run fills it the same way."""
    engine.forget()
    messages = conversation.messages(engine.count_tokens, 1500)
    return "".join(engine.stream_chat(messages, max_tokens=max_tokens, temperature=temperature))


def same_start(guessed: str, plain: str, words: int = 10) -> None:
    """The answers are the same, or part only after ``words`` words. llama.cpp on a CPU is
    not batch-invariant: a batch's logits differ from single steps' (by up to ~0.9 on this
    build, measured), so greedy answers can part at a near tie; the scripted tests of
    test_speculative check that the tokens are exactly the model's own for equal logits."""
    if guessed != plain:
        assert guessed.split()[:words] == plain.split()[:words]


def repeating_conversation() -> Conversation:
    """A request whose answer repeats words of the question (what prompt lookup is for,
    like a table made of the last answer)."""
    c = Conversation("You are a helpful assistant.")
    c.add_user(
        "Copy this text: Monday, visit the museum. Tuesday, walk in the park. Wednesday, "
        "eat at the market. Thursday, see a show."
    )
    return c


def test_prompt_lookup_guesses_right_and_the_greedy_answer_is_the_models_own(
    engine: LlamaEngine,
) -> None:
    c = repeating_conversation()
    engine.drafter = None
    plain = answer(engine, c)
    engine.drafter = PromptLookup()
    guessed = answer(engine, c)
    stats = engine.speculation
    assert stats is not None
    assert stats.accepted >= 12, stats  # the answer repeats the question's words
    assert stats.rounds < stats.tokens  # fewer batches than tokens
    same_start(guessed, plain)


def test_a_draft_model_of_the_same_vocabulary_drafts_and_the_answer_is_the_models_own(
    engine: LlamaEngine,
) -> None:
    c = Conversation("You are a helpful assistant.")
    c.add_user("Why is the sky blue? Answer in two sentences.")
    # the model drafting for itself (greedy, no repetition penalty): its guesses are what
    # it will say
    target = LlamaEngine(models.resolve("llm", SMALL), threads=2, repeat_penalty=1.0)
    plain = answer(target, c, 40)
    target.drafter = DraftModel(
        load_llama(models.resolve("llm", SMALL), n_ctx=2048, threads=2, seed=0), p_min=0.0
    )
    guessed = answer(target, c, 40)
    engine = target
    stats = engine.speculation
    assert stats is not None
    assert stats.acceptance > 0.8, stats
    assert stats.rounds * 2 < stats.tokens
    same_start(guessed, plain)


def test_draft_settings(engine: LlamaEngine) -> None:
    assert isinstance(drafter(Settings(), engine), PromptLookup)
    assert drafter(Settings(draft="none"), engine) is None
    with pytest.raises(ModelError, match="no such file and no catalog entry"):
        drafter(Settings(draft="no-such-model"), engine)


def test_a_draft_model_with_another_vocabulary_is_one_clear_error(engine: LlamaEngine) -> None:
    others = [
        e for e in models.catalog() if e.kind == "llm" and e.name != SMALL and e.path() is not None
    ]
    if not others:
        pytest.skip("no LLM of another vocabulary installed")
    with pytest.raises(ModelError, match="vocabulary is not the LLM's"):
        drafter(Settings(draft=others[0].name), engine)
