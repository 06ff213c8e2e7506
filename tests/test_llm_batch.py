"""Continuous batching on the real SmolLM2 model: many conversations in one llama.cpp
context, each with its own KV cache, sampler and history reuse; a barge-in drops its
sequence at once. And engine threads that start the most urgent work first."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from voicegrok import models
from voicegrok.assistant import Engines
from voicegrok.config import Settings
from voicegrok.conversation import Conversation, Message
from voicegrok.engines.llama import LlamaEngine
from voicegrok.engines.llama_batch import BatchedLlamaEngine
from voicegrok.errors import ServiceError
from voicegrok.threads import EngineThread

from .conftest import ask_item, serve, wait_for
from .test_server import sdk

QUESTIONS = (
    "What is the capital of France?",
    "Name three things to do in New York City.",
    "How do I boil an egg?",
    "What is a good name for a cat?",
)


@pytest.fixture(scope="module")
def engine() -> Iterator[BatchedLlamaEngine]:
    e = BatchedLlamaEngine(models.resolve("llm"), slots=6, threads=2)
    yield e
    e.close()


ESSAY = "Write a 500-word essay about the history of Rome."
"""Answered up to any token limit (1,000 tokens take several seconds on any machine here),
so the slot is busy for the whole test; "Tell me a long story." was 25 tokens, over before
the test's next step on a fast machine."""


ACCESSIBLE = "Tell me about accessible museums in Paris."


def chat(*turns: str) -> list[Message]:
    conversation = Conversation()
    for i, text in enumerate(turns):
        (conversation.add_user if i % 2 == 0 else conversation.add_assistant)(text)
    return conversation.messages()


def evaluated(engine: BatchedLlamaEngine, messages: list[Message]) -> int:
    """Tokens the engine evaluated to put ``messages`` in a KV cache."""
    before = engine.batched_tokens
    engine.warm_up(messages)
    return engine.batched_tokens - before


@pytest.mark.models
def test_with_the_same_cache_it_answers_token_for_token_like_the_plain_engine() -> None:
    """Positions, logits and sampling are exact: with the plain engine's cache size (one
    slot of 2048 tokens) a long greedy answer is the same text, and so is a sampled one. (With more
    slots the larger cache changes llama.cpp's arithmetic slightly, and greedy answers
    can part after a few hundred characters. So do batches of other sizes, on some CPUs:
    both engines evaluate the system prompt in one batch, then the 17 tokens of the
    question in one batch too, the plain engine folding the short tail of its 16-token
    chunks into the chunk before.)"""
    path = models.resolve("llm")
    plain = LlamaEngine(path, threads=2)
    batched = BatchedLlamaEngine(path, slots=1, kv_tokens=2048, threads=2)
    try:
        story = chat("Tell me a long story about a dragon.")
        for e in (plain, batched):
            e.warm_up(Conversation().messages())
        answers = [
            "".join(e.stream_chat(story, max_tokens=200, temperature=0)) for e in (plain, batched)
        ]
        assert answers[0] == answers[1] and len(answers[0]) > 500
        sampled = [
            "".join(e.stream_chat(chat("Tell me about dragons."), max_tokens=60, temperature=0.7))
            for e in (plain, batched)
        ]
        assert sampled[0] == sampled[1]  # the same seeded sampler chain
    finally:
        batched.close()


@pytest.mark.models
def test_conversations_answered_at_once_share_each_decode(engine: BatchedLlamaEngine) -> None:
    """Four questions at once: each gets its own right answer, and one llama_decode
    carries the next token of several of them (far fewer steps than tokens)."""
    answers: dict[int, str] = {}

    def ask(i: int) -> None:
        answers[i] = "".join(engine.stream_chat(chat(QUESTIONS[i]), max_tokens=60, temperature=0))

    steps, tokens = engine.steps, engine.batched_tokens
    threads = [threading.Thread(target=ask, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(answers) == [0, 1, 2, 3]
    assert "Paris" in answers[0]
    assert "egg" in answers[2].lower()
    assert all(a.strip() for a in answers.values())
    decoded = engine.batched_tokens - tokens
    assert engine.steps - steps < decoded / 2, (engine.steps - steps, decoded)


@pytest.mark.models
def test_each_conversation_evaluates_only_what_is_new(engine: BatchedLlamaEngine) -> None:
    """The system prompt is evaluated once and shared into every new conversation; a
    conversation's next turn evaluates only its new words, even after others have
    been answered in between."""
    system = Conversation().messages()
    evaluated(engine, system)
    first = chat(QUESTIONS[0])
    new = len(engine.prompt_tokens(first)) - len(engine.prompt_tokens(system))
    assert evaluated(engine, first) <= new + 1
    other = chat(QUESTIONS[3])
    assert evaluated(engine, other) <= new + 10  # its question only
    answer = "".join(engine.stream_chat(first, max_tokens=30, temperature=0))
    evaluated(engine, chat(QUESTIONS[2]))  # a third conversation meanwhile
    second = chat(QUESTIONS[0], answer, "And of Italy?")
    before = engine.prompt_tokens(chat(QUESTIONS[0], answer))
    after = engine.prompt_tokens(second)
    assert evaluated(engine, second) <= len(after) - len(before) + 8


@pytest.mark.models
def test_an_answer_is_reread_as_the_tokens_the_model_wrote(engine: BatchedLlamaEngine) -> None:
    """As in the plain engine: a sampled answer is often written in other tokens than its
    text tokenized again, and the next turn's prompt gives it as the tokens written, so
    the slot's whole cache is that prompt's prefix and only the new question is
    evaluated. (SmolLM2's greedy answers seldom part from their text's tokens; at 0.9,
    about one in three does: the first such answer of a few questions is checked.)"""
    llm = engine._llm
    for question in (ACCESSIBLE, *QUESTIONS[1:], ESSAY):
        first = chat(question)
        answer = "".join(engine.stream_chat(first, max_tokens=120, temperature=0.9)).strip()
        asked = engine.prompt_tokens(first)
        slot = max(engine._slots, key=lambda s: s.used_at)  # the one just released
        assert slot.tokens[: len(asked)] == asked
        written = slot.tokens[len(asked) :]
        text_tokens = llm.tokenize(answer.encode(), add_bos=False, special=False)
        if text_tokens[: len(written)] != written:  # (a last token sampled is not evaluated)
            break
    else:
        pytest.fail("every answer was written in its text's own tokens: no case to check")
    assert len(written) > 20
    follow_up = chat(question, answer, "Which one is free?")
    prompt, held = engine.prompt_tokens(follow_up), list(slot.tokens)
    while not llm.detokenize(held[-1:]).strip():
        held.pop()  # a line break written after the words: the history keeps them stripped
    assert len(held) > len(asked) + 20
    assert prompt[: len(held)] == held
    assert evaluated(engine, follow_up) <= len(prompt) - len(held) + 1


@pytest.mark.models
def test_with_every_slot_taken_a_conversation_goes_back_to_its_own_cache() -> None:
    """As many slots as conversations, each history warmed up after its answer (ending
    with the assistant's cue, where the next prompt has the user's): each next turn goes
    back to its own slot and evaluates only its new words, not another's slot (whose
    history would then be evaluated anew)."""
    e = BatchedLlamaEngine(models.resolve("llm"), slots=2, threads=2)
    try:
        histories = []
        for question in (QUESTIONS[0], QUESTIONS[2]):
            answer = "".join(e.stream_chat(chat(question), max_tokens=30, temperature=0))
            histories.append((question, answer))
            e.warm_up(chat(question, answer))  # as the LLM stage does after each answer
        for question, answer in histories:
            before = e.prompt_tokens(chat(question, answer))
            after = chat(question, answer, "Tell me more.")
            assert evaluated(e, after) <= len(e.prompt_tokens(after)) - len(before) + 8
    finally:
        e.close()


@pytest.mark.models
def test_closing_the_engine_ends_every_request_with_an_error() -> None:
    """Requests answering or waiting for a slot when the engine closes get an error,
    never a wait for ever."""
    e = BatchedLlamaEngine(models.resolve("llm"), slots=1, threads=2)
    long = e.stream_chat(chat(ESSAY), max_tokens=1000, temperature=0)
    assert next(long)
    waiting = e.stream_chat(chat(QUESTIONS[0]), max_tokens=40, temperature=0)
    outcome: list[object] = []

    def wait() -> None:
        try:
            outcome.append("".join(waiting))
        except ServiceError as error:
            outcome.append(error)

    t = threading.Thread(target=wait)
    t.start()
    time.sleep(0.2)  # it waits for the one slot
    e.close()
    t.join(10)
    assert not t.is_alive() and isinstance(outcome[0], ServiceError), outcome
    with pytest.raises(ServiceError):
        "".join(long)


@pytest.mark.models
def test_a_full_cache_gives_way_to_the_least_recently_used_conversation() -> None:
    """A KV cache too small for two long conversations: the second is answered all the
    same, the idle first one's cache making room (it is evaluated anew next time)."""
    small = BatchedLlamaEngine(models.resolve("llm"), slots=2, kv_tokens=512, threads=2)
    try:
        story = chat("Tell me a long story about a dragon.")
        first = "".join(small.stream_chat(story, max_tokens=300, temperature=0))
        other = chat("Tell me a long story about a princess.")
        second = "".join(small.stream_chat(other, max_tokens=300, temperature=0))
        assert len(first) > 600 and len(second) > 600
        again = chat("Tell me a long story about a dragon.", first, "Who wins?")
        assert evaluated(small, again) > len(small.prompt_tokens(story))  # evaluated anew
    finally:
        small.close()


@pytest.mark.models
def test_a_barge_in_drops_its_sequence_at_once(engine: BatchedLlamaEngine) -> None:
    """Closing an answer's stream (a barge-in) ends its sequence before the next step:
    the engine stops decoding for it while another answer goes on."""
    long = engine.stream_chat(
        chat("Tell me a long story about a dragon."), max_tokens=400, temperature=0
    )
    assert next(long)
    other_pieces: list[str] = []

    def other() -> None:
        other_pieces.extend(engine.stream_chat(chat(QUESTIONS[1]), max_tokens=40, temperature=0))

    t = threading.Thread(target=other)
    t.start()
    long.close()
    t.join(60)
    assert other_pieces
    deadline = time.monotonic() + 5
    while engine.answering():
        assert time.monotonic() < deadline, "the dropped sequence is still decoded"
        time.sleep(0.01)


@pytest.mark.models
async def test_a_barge_in_frees_its_conversation_while_the_request_waits_for_a_slot() -> None:
    """The one slot is busy with a long answer; a second conversation's question waits
    for it on that conversation's thread. A barge-in (its consumer cancelled) ends the
    wait at once: the thread is free for the next turn while the long answer goes on."""
    e = BatchedLlamaEngine(models.resolve("llm"), slots=1, threads=2)
    thread = EngineThread("llm-conversation")
    long = e.stream_chat(chat(ESSAY), max_tokens=1000, temperature=0)
    try:
        assert next(long)

        async def consume() -> None:
            question = chat(QUESTIONS[0])
            async for _ in thread.stream(
                lambda: e.stream_chat(question, max_tokens=40, temperature=0)
            ):
                pass

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.3)  # waiting for the slot
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert await asyncio.wait_for(thread.call(lambda: "free"), 10) == "free"
        assert e.answering() == 1  # the long answer is still being written
    finally:
        long.close()
        thread.close(wait=True)
        e.close()


class _Jobs:
    """Streams for an engine thread: each yields its name; "busy" first waits for
    ``release``."""

    def __init__(self, thread: EngineThread) -> None:
        self.thread = thread
        self.release = threading.Event()
        self.started: list[str] = []

    def _job(self, name: str) -> Iterator[str]:
        self.started.append(name)
        if name == "busy":
            self.release.wait(10)
        yield name

    async def drain(self, name: str, priority: int = 1) -> list[str]:
        return [
            item async for item in self.thread.stream(lambda: self._job(name), priority=priority)
        ]


async def test_the_most_urgent_stream_waiting_for_an_engine_thread_starts_first() -> None:
    """With many conversations on one voice, the first clause somebody is waiting for
    (priority 0) goes ahead of later clauses queued before it."""
    jobs = _Jobs(EngineThread("tts"))
    try:
        busy = asyncio.create_task(jobs.drain("busy"))
        await wait_for(lambda: jobs.started, timeout_s=10)
        later = [asyncio.create_task(jobs.drain(f"later {i}")) for i in range(2)]
        await asyncio.sleep(0.05)
        first = asyncio.create_task(jobs.drain("first clause", 0))
        await asyncio.sleep(0.05)
        jobs.release.set()
        await asyncio.gather(busy, first, *later)
        assert jobs.started == ["busy", "first clause", "later 0", "later 1"]
    finally:
        jobs.thread.close(wait=True)


async def test_an_engine_thread_with_two_workers_runs_two_streams_at_once() -> None:
    jobs = _Jobs(EngineThread("tts", workers=2))
    try:
        busy = asyncio.create_task(jobs.drain("busy"))
        assert await asyncio.wait_for(jobs.drain("beside"), 10) == ["beside"]  # busy waits
        jobs.release.set()
        assert await busy == ["busy"]
    finally:
        jobs.release.set()
        jobs.thread.close(wait=True)


@pytest.mark.parametrize("conversations", [1, 3])
def test_a_first_clause_is_spoken_beside_a_busy_voice_while_many_conversations_wait(
    conversations: int,
) -> None:
    """Serving many conversations, a first clause that finds the voice busy with another
    is synthesized on the second voice at once, the LLM pausing meanwhile; with one
    conversation it waits its turn as before."""
    from voicegrok.engines.piper import PiperEngine
    from voicegrok.threads import CoreShare

    cores = CoreShare(2)
    piper = PiperEngine(models.resolve("tts"), cores=cores, second_voice=True)
    cores.serving(conversations)
    ended: dict[str, float] = {}
    paused_llm: list[bool] = []
    long = "This is a long later clause of another answer, " * 4

    def speak(name: str, text: str, urgent: bool) -> None:
        audio = b"".join(piper.synthesize(text, urgent=urgent))
        assert len(audio) > 0
        ended[name] = time.perf_counter()

    busy = threading.Thread(target=speak, args=("later clause", long, False))
    busy.start()
    assert wait_for_sync(piper._lock.locked)
    first = threading.Thread(target=speak, args=("first clause", "Sure,", True))
    first.start()
    while first.is_alive() and not paused_llm:
        with cores._changed:
            if cores._counts["exclusive"]:
                paused_llm.append(True)
        time.sleep(0.002)
    first.join(30)
    busy.join(30)
    if conversations > 1:
        assert ended["first clause"] < ended["later clause"]
        assert paused_llm
    else:
        assert ended["first clause"] > ended["later clause"]
        assert not paused_llm


def wait_for_sync(condition: Callable[[], bool], timeout_s: float = 10) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)
    return True


@pytest.mark.models
async def test_a_second_session_is_answered_while_the_first_is_still_written(
    listening: Engines, engine: BatchedLlamaEngine
) -> None:
    """``voicegrok serve`` on the batching engine, two clients of the official SDK: the
    second question, asked while a long answer is being written for the first, is heard
    before that answer is finished (one engine serving one request at a time would have
    made it wait for the whole of it)."""
    batched = dataclasses.replace(listening, llm=engine)
    heard: dict[str, float] = {}

    async def session(name: str, question: str, after: asyncio.Event | None) -> None:
        async with sdk(server).realtime.connect(model="voicegrok") as conn:
            await anext(aiter(conn))  # session.created
            if after is not None:
                await after.wait()
            await conn.conversation.item.create(item=ask_item(question))
            await conn.response.create()
            async for event in conn:
                now = time.monotonic()
                if event.type == "response.output_audio.delta":
                    heard.setdefault(f"{name} first audio", now)
                    started.set()
                elif event.type == "response.output_audio_transcript.delta":
                    heard[f"{name} last word"] = now
                elif event.type == "response.done":
                    assert event.response.status == "completed"
                    return

    started = asyncio.Event()
    async with serve(batched, Settings(max_tokens=150)) as server:  # a shorter wait
        await asyncio.wait_for(
            asyncio.gather(
                session("long", "Tell me a long story about a dragon and a knight.", None),
                session("short", "What is the capital of France?", started),
            ),
            timeout=180,
        )
    assert heard["short first audio"] < heard["long last word"], heard


@pytest.mark.models
def test_a_warm_up_told_to_stop_frees_its_thread_at_once() -> None:
    """A conversation's warm-up waits for the one slot, busy with a long answer; once its
    next answer waits (``stop`` set), the warm-up returns and its request is dropped."""
    e = BatchedLlamaEngine(models.resolve("llm"), slots=1, threads=2)
    long = e.stream_chat(chat(ESSAY), max_tokens=1000, temperature=0)
    try:
        assert next(long)
        stop = threading.Event()
        threading.Timer(0.3, stop.set).start()
        start = time.monotonic()
        e.warm_up(chat(QUESTIONS[0]), stop=stop)
        assert time.monotonic() - start < 2, "the warm-up waited for the slot"
        assert stop.is_set()
        assert e.answering() == 1  # the long answer goes on; the warm-up is gone
    finally:
        long.close()
        e.close()
