"""The LLM engine's own decoding loop, on the real SmolLM2 model.

It replaces llama-cpp-python's ``create_chat_completion`` (for speed), so it must write
the same answers: the same chat template, tokens, sampling settings and seed (its sampler
chain applies top-k before the repetition penalty, which changes nothing in practice).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from voicegrok import models
from voicegrok.conversation import Conversation, Message
from voicegrok.engines.decoder import STOPPABLE_CHUNK
from voicegrok.engines.llama import REPEAT_PENALTY, TOP_P, ChatFormat, LlamaEngine
from voicegrok.engines.llama_copy import working_copy

pytestmark = pytest.mark.models

QUESTION = "Tell me about New York City in a few sentences."


@pytest.fixture(scope="module")
def engine() -> Iterator[LlamaEngine]:
    yield LlamaEngine(models.resolve("llm"), threads=2)


def ask(engine: LlamaEngine, messages: list[Message], temperature: float = 0.3) -> str:
    return "".join(engine.stream_chat(messages, max_tokens=48, temperature=temperature))


def spied(engine: LlamaEngine) -> list[list[int]]:
    """The batches of tokens ``engine`` evaluates from now on, as it evaluates them."""
    batches: list[list[int]] = []
    decode = engine._decoder._decode_array

    def spy(array: Any, tokens: list[int]) -> None:
        batches.append(list(tokens))
        decode(array, tokens)

    engine._decoder._decode_array = spy  # type: ignore[method-assign]
    return batches


def chat(question: str, *history: str) -> list[Message]:
    conversation = Conversation()
    for i, text in enumerate(history):
        (conversation.add_user if i % 2 == 0 else conversation.add_assistant)(text)
    conversation.add_user(question)
    return conversation.messages()


@pytest.mark.parametrize("temperature", [0.0, 0.3])
def test_answers_are_those_of_llama_cpp_python_create_chat_completion(temperature: float) -> None:
    """Same model, prompt, sampling settings and seed: the same words, token for token
    (both from an empty cache, the prompt evaluated in the engine's chunks of 16 tokens
    with flash attention on 2 threads: logits computed in other batches, or attention
    split otherwise, differ in the last bits)."""
    from llama_cpp import Llama

    reference: Any = Llama(
        model_path=str(working_copy(models.resolve("llm"))),  # the file the engine loads
        n_ctx=2048,
        n_batch=STOPPABLE_CHUNK,
        n_threads=2,
        flash_attn=True,
        verbose=False,
    )
    messages = chat(QUESTION)
    expected = "".join(
        chunk["choices"][0]["delta"].get("content") or ""
        for chunk in reference.create_chat_completion(
            messages=[dict(m) for m in messages],
            stream=True,
            max_tokens=48,
            temperature=temperature,
            top_p=TOP_P,
            repeat_penalty=REPEAT_PENALTY,
            seed=0,
        )
    )
    assert len(expected.split()) > 10
    engine = LlamaEngine(models.resolve("llm"))
    # (the engine folds a tail of fewer than 8 tokens into the chunk before; this prompt
    # has none, so both evaluate it in the same batches)
    assert len(engine.prompt_tokens(messages)) % STOPPABLE_CHUNK >= STOPPABLE_CHUNK // 2
    assert ask(engine, messages, temperature) == expected


def test_a_follow_up_reuses_the_cached_conversation_and_answers_as_a_fresh_model_would() -> None:
    """The second turn evaluates only what follows the first one's prompt, and the cache
    it starts from (the stale end of the first answer, cut by a barge-in, removed) gives
    the answer of a fresh model fed the same tokens in the same batches. (Not in one
    batch: logits computed in batches of other sizes differ in their last bits, and greedy
    decoding parts at the first near tie; on some CPUs that comes within 48 tokens.)"""
    engine = LlamaEngine(models.resolve("llm"), threads=2)
    batches = spied(engine)
    first = chat(QUESTION)
    answer = ask(engine, first, 0.0)
    first_batches, batches[:] = list(batches), []
    heard = " ".join(answer.split()[:8])  # a barge-in: the history keeps what was heard,
    follow_up = chat("Which one is free?", QUESTION, heard)  # the cache holds it all
    assert heard != answer.strip()
    cached = ask(engine, follow_up, 0.0)
    kept = engine.prompt_tokens(first)
    prompt = engine.prompt_tokens(follow_up)
    assert prompt[: len(kept)] == kept
    evaluated = batches[0]  # the follow-up's prompt; then one batch per answer token
    reused = len(prompt) - len(evaluated)
    assert reused >= len(kept), "the first turn's prompt is not evaluated again"
    assert evaluated == prompt[reused:]

    fresh = LlamaEngine(models.resolve("llm"), threads=2)
    replayed: list[int] = []
    for batch in first_batches:  # the first turn's batches that made the reused prefix
        if len(replayed) >= reused:
            break
        fresh._decoder._decode(batch)
        replayed += batch
    assert replayed == prompt[:reused]
    fresh._decoder._decode(evaluated)  # then the follow-up's own tokens, as cached did
    assert ask(fresh, follow_up, 0.0) == cached


def test_a_warmed_up_prompt_is_answered_as_if_it_had_not_been(engine: LlamaEngine) -> None:
    """Warming up the exact prompt leaves its last logits ready, and nothing changes."""
    messages = chat("What is the capital of France?")
    cold = ask(engine, messages)
    engine.warm_up(chat("Something else entirely, to move the cache away."))
    engine.warm_up(messages)
    assert ask(engine, messages) == cold
    assert "Paris" in cold


def test_words_heard_so_far_are_warmed_up_without_the_end_the_final_prompt_replaces(
    engine: LlamaEngine,
) -> None:
    """A partial transcript's prompt ends with its words: the final transcript's prompt
    starts with all of it, so nothing evaluated ahead is cut from the cache again (with the
    message's end and the assistant's cue, five tokens of each such warm-up were)."""
    so_far = chat("Can you put this itinerary")
    final = chat("Can you put this itinerary in a table?")
    open_end = engine.prompt_tokens(so_far, open_end=True)
    closed = engine.prompt_tokens(so_far)
    assert final_starts_with(engine.prompt_tokens(final), open_end)
    assert len(closed) - len(open_end) >= 3, "the message's end and the cue are left out"
    assert engine.llama.detokenize(open_end).decode().endswith("Can you put this itinerary")
    engine.warm_up(so_far, open_end=True)
    assert engine._decoder.tokens == open_end
    batches = spied(engine)
    assert "table" in ask(engine, final, 0.0).lower() or batches
    assert batches[0] == engine.prompt_tokens(final)[len(open_end) :], "only the rest is new"


def final_starts_with(prompt: list[int], prefix: list[int]) -> bool:
    return prompt[: len(prefix)] == prefix


def test_the_history_warmed_up_in_the_background_gives_way_to_the_last_clause(
    engine: LlamaEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-sentence answer is spoken only after its last token: the history warmed up
    for the next turn then waits until that clause, synthesized with every core, is made.
    A warm-up someone waits for (the words said so far) does not wait."""
    cores = engine._cores
    monkeypatch.setattr(cores, "speech_grace_s", 5.0)
    order: list[str] = []
    evaluate = engine._decoder.evaluate

    def evaluated(*args: Any, **kwargs: Any) -> bool:
        order.append("history evaluated")
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(engine._decoder, "evaluate", evaluated)

    def last_clause() -> None:
        time.sleep(0.05)  # the clause reaches the voice a moment after the answer ends
        with cores.exclusive():
            order.append("clause started")
            time.sleep(0.1)
            order.append("clause made")

    voice = threading.Thread(target=last_clause)
    voice.start()
    engine.warm_up(chat("What is the capital of France?"), background=True)
    voice.join()
    assert order == ["clause started", "clause made", "history evaluated"]

    order.clear()
    start = time.perf_counter()
    engine.warm_up(chat("What is the capital of Spain?"))
    assert order == ["history evaluated"]
    assert time.perf_counter() - start < 2.0, "no wait for a synthesis that never comes"


def test_a_warm_up_told_to_stop_gives_way_and_leaves_a_usable_prefix(engine: LlamaEngine) -> None:
    """An answer waits: the warm-up running stops between two chunks, its cache holds the
    start of the prompt, and the question that follows is answered as after a full one."""
    story = " ".join(f"On day {i} the traveller walked to a new town." for i in range(40))
    history = chat("Thanks!", "Tell me about your trip.", story)
    question = chat("Who wrote Hamlet?", "Tell me about your trip.", story, "Thanks!")
    prompt = engine.prompt_tokens(history)
    engine.warm_up(chat("Hi."))  # the cache holds something else
    stop = threading.Event()
    stop.set()  # the answer already waits: nothing more is evaluated
    engine.warm_up(history, stop=stop)
    assert len(engine._decoder.tokens) < len(prompt) // 2
    stop.clear()
    threading.Timer(0.02, stop.set).start()  # it comes while the history is evaluated
    engine.warm_up(history, stop=stop)
    held = list(engine._decoder.tokens)
    assert 0 < len(held) < len(prompt), "stopped before the end"
    assert held == prompt[: len(held)]
    after_stop = ask(engine, question, 0.0)
    engine.warm_up(chat("Hi."))
    engine.warm_up(history)
    assert engine._decoder.tokens[: len(prompt)] == prompt
    after_all = ask(engine, question, 0.0)
    # (the prompt evaluated in other batches gives slightly other numbers: words may differ)
    assert "Shakespeare" in after_stop and "Shakespeare" in after_all, (after_stop, after_all)


def test_an_answer_stops_at_max_tokens_and_the_cache_stays_usable(engine: LlamaEngine) -> None:
    pieces = list(engine.stream_chat(chat(QUESTION), max_tokens=5, temperature=0.0))
    assert 1 <= len(pieces) <= 5
    stream = engine.stream_chat(chat("Tell me a story."), max_tokens=100, temperature=0.0)
    next(stream)
    stream.close()  # the listener went away (barge-in) after the first token
    assert "Paris" in ask(engine, chat("What is the capital of France?"), 0.0)


def test_an_answer_cancelled_while_its_prompt_is_evaluated_stops_there(
    engine: LlamaEngine,
) -> None:
    """A withdrawn answer does not hold the engine for its whole prompt (with a 1.5B model
    on 2 cores a question's prompt takes a second): ``cancel()`` from another thread stops
    the evaluation between two chunks, and the cache keeps the prefix done so far."""
    long_text = " ".join(f"Item {i} is a {['red', 'green', 'blue'][i % 3]} box." for i in range(24))
    messages = chat("Which items are red?", long_text, "I see them.")
    prompt = engine.prompt_tokens(messages)
    engine.warm_up(chat("Something else entirely, to move the cache away."))
    answer = engine.stream_chat(messages, max_tokens=20, temperature=0.0)
    got: list[str] = []
    worker = threading.Thread(target=lambda: got.extend(answer))
    worker.start()
    time.sleep(0.02)
    started = time.perf_counter()
    answer.cancel()  # type: ignore[attr-defined]
    worker.join(timeout=30)
    assert time.perf_counter() - started < 0.5
    assert got == []
    held = engine._decoder.tokens
    assert len(held) < len(prompt)  # stopped before its end
    assert prompt[: len(held)] == held[: len(prompt)]  # a prefix of it
    # the next answer goes on from that prefix and is the same as an uninterrupted one's
    resumed = ask(engine, messages, 0.0)
    engine.forget()
    assert resumed == ask(engine, messages, 0.0)


def test_a_prompt_is_evaluated_in_stoppable_chunks_without_a_short_tail() -> None:
    """Chunks of 16 tokens between two looks at the stop flag; a tail of fewer than 8 goes
    with the chunk before it (one pass over the weights fewer), as long as that fits."""
    from voicegrok.engines.decoder import _chunks

    sizes = [[len(c) for c in _chunks(list(range(n)), 16, 512)] for n in (1, 16, 17, 23, 24, 39)]
    assert sizes == [[1], [16], [17], [23], [16, 8], [16, 23]]
    assert [len(c) for c in _chunks(list(range(17)), 16, 16)] == [16, 1]
    assert [t for c in _chunks(list(range(39)), 16, 512) for t in c] == list(range(39))


def test_a_whole_answer_is_reread_as_the_tokens_the_model_wrote(engine: LlamaEngine) -> None:
    """After an answer the KV cache holds the tokens the model wrote; the next prompt holds
    the answer's text. Tokenized again, a text is often other tokens ("accessible" is one,
    the 1.5B wrote "access" + "ible"), and the cache then matched the next prompt only up
    to there: the demo's fourth question re-evaluated 120 tokens of the third answer. The
    next prompt gives the answer as the tokens written, so the whole cache is its prefix."""
    first = chat("Name three quiet places to visit in New York City, in one sentence each.")
    answer = "".join(engine.stream_chat(first, max_tokens=80, temperature=0.0))
    cache = list(engine._decoder.tokens)
    follow_up = chat("Which one is free?", first[-1]["content"], answer.strip())
    prompt = engine.prompt_tokens(follow_up)
    written = len(cache) - len(engine.prompt_tokens(first))
    assert written > 20
    assert prompt[: len(cache)] == cache


def test_an_answer_written_in_other_tokens_than_its_text_is_reread_as_written() -> None:
    """The chat format gives a remembered answer's tokens in place of its text, and only
    there: the text before and after is tokenized as it would be in the whole."""
    engine = LlamaEngine(models.resolve("llm"), threads=1)
    llm, fmt = engine.llama, engine._chat
    text = "The view from the top is accessible to everyone, and it is free."

    def tok(s: str) -> list[int]:
        return list(llm.tokenize(s.encode(), add_bos=False, special=False))

    at = text.index("ible")
    written = tok(text[:at]) + tok(text[at:])  # "access" + "ible...": not the text's own
    assert written != tok(text)
    messages = chat("Is it free?", "Tell me about the view.", text)
    plain = fmt.prompt_tokens(messages)
    assert not _holds(plain, written)
    fmt.remember([(t, engine._text.piece(t)) for t in written])
    spliced = fmt.prompt_tokens(messages)
    assert _holds(spliced, written)
    start = next(i for i in range(len(spliced)) if spliced[i : i + len(written)] == written)
    # before and after the answer, the tokens of the prompt as a whole
    assert spliced[:start] == plain[:start]
    after = len(spliced) - start - len(written)
    assert spliced[start + len(written) :] == plain[len(plain) - after :]
    assert llm.detokenize(spliced) == llm.detokenize(plain)
    # a history that no longer holds the text whole (an answer cut by a barge-in) is
    # tokenized as it is
    cut = chat("Is it free?", "Tell me about the view.", text[:30])
    assert fmt.prompt_tokens(cut) == ChatFormat(llm).prompt_tokens(cut)


def _holds(tokens: list[int], part: list[int]) -> bool:
    return any(tokens[i : i + len(part)] == part for i in range(len(tokens) - len(part) + 1))
