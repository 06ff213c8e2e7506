"""Continuous batching: many conversations answered by one llama.cpp context at once.

On a CPU, generating a token is bound by reading the weights from memory, and one
``llama_decode`` over a token of each of 20 conversations reads them once: a batch of 20
costs little more than a batch of 1. :class:`BatchedLlamaEngine` keeps a *slot* (a
llama.cpp sequence, with its own KV cache and sampler) per conversation being answered,
and one scheduler thread that, at every step, decodes the next token of every slot that is
generating together with a chunk of the prompts still being evaluated, so a new question
starts while the others go on.

A slot is not tied to a conversation: a request takes the free slot whose cache shares the
longest prefix with its prompt (the same conversation's slot, after its first turn), and a
prefix held by another slot (the system prompt) is shared into it with
``llama_memory_seq_cp`` instead of being evaluated again. The KV cache is unified, so
that shared prefix takes its memory once.

Each ``stream_chat`` blocks its caller on a queue of the scheduler's tokens: a conversation
calls it from a thread of its own (``concurrent``). Closing the generator (a barge-in)
drops the request from the next step, and so does the answer's ``cancel()`` (called by
:meth:`~voicegrok.threads.EngineThread.stream` when its consumer goes), even while the
request still waits for a slot.
"""

from __future__ import annotations

import codecs
import ctypes
import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..conversation import Message
from ..errors import ServiceError, first_line
from ..threads import CoreShare
from ..tools.calls import TRIGGER, ToolOffer
from . import Stop
from .llama import (
    REPEAT_PENALTY,
    TOP_P,
    Answer,
    ChatFormat,
    Sampler,
    TokenText,
    common_prefix,
    follow_cores,
    load_llama,
)

__all__ = ["BatchedLlamaEngine"]

log = logging.getLogger(__name__)

PREFILL_CHUNK = 128
"""Prompt tokens of one request evaluated per step: a long new prompt delays the other
conversations' next tokens by one chunk's time at most, not the whole prompt's."""

FIRST_WORDS_TOKENS = 16
"""An answer with fewer tokens than this has not given its first clause to speech yet."""
CATCH_UP = 3

_END = object()
_CANCELLED = object()


@dataclasses.dataclass(eq=False)
class _Request:
    prompt: list[int]
    max_tokens: int
    sampler: Sampler | None
    """None: evaluate the prompt only (a warm-up)."""
    out: queue.SimpleQueue[object] = dataclasses.field(default_factory=queue.SimpleQueue)
    pending: list[int] = dataclasses.field(default_factory=list)
    """Tokens to evaluate next: the rest of the prompt, then the last sampled token."""
    generated: int = 0
    written: list[tuple[int, bytes]] = dataclasses.field(default_factory=list)
    """The answer's tokens so far, each with its bytes (see ``ChatFormat.remember``)."""
    cancelled: bool = False
    finished: bool = False


@dataclasses.dataclass(eq=False)
class _Slot:
    seq: int
    tokens: list[int] = dataclasses.field(default_factory=list)
    """What this sequence's KV cache holds, in order."""
    request: _Request | None = None
    used_at: float = 0.0


def _placing_cost(slot: _Slot, prompt: Sequence[int]) -> tuple[int, int, float]:
    """Which free slot a prompt goes to (the lowest): the one whose cache loses the fewest
    tokens the prompt does not share (the same conversation's own slot, which differs
    only in the last few tokens, or an empty one), the longest shared prefix first, then
    the least recently used. The longest prefix any slot holds is shared into the chosen
    one anyway (see ``_place_waiting``), so nothing else is gained by the choice."""
    common = common_prefix(slot.tokens, prompt)
    return (len(slot.tokens) - common, -common, slot.used_at)


class BatchedLlamaEngine:
    """A :class:`~voicegrok.engines.ChatModel` answering up to ``slots`` conversations at
    once, each with ``n_ctx`` tokens of context (the KV cache holds ``kv_tokens`` in all)."""

    concurrent = True
    """Call ``stream_chat`` from one thread per conversation: it waits for its tokens."""

    def __init__(
        self,
        model_path: Path,
        *,
        slots: int,
        n_ctx: int = 2048,
        kv_tokens: int | None = None,
        threads: int = 2,
        seed: int = 0,
        cores: CoreShare | None = None,
    ) -> None:
        import llama_cpp

        self._c = llama_cpp
        # the Llama object gives the weights, the tokenizer and the chat template; its own
        # context is never used, so it is made small
        self._llm: Any = load_llama(model_path, n_ctx=64, threads=threads, seed=seed)
        self.path = model_path
        self.n_ctx = n_ctx
        self._seed = seed
        self._chat = ChatFormat(self._llm)
        self.count_tokens = self._chat.count_tokens
        self.prompt_tokens = self._chat.prompt_tokens
        total = kv_tokens or n_ctx * min(slots, 4)
        # the settings llama-cpp-python gave its own context (as the one-conversation
        # engine has them), for room for every conversation
        params = llama_cpp.llama_context_params()
        ctypes.pointer(params)[0] = self._llm.context_params
        params.n_ctx = total
        params.n_seq_max = slots
        # the small Llama's n_batch is its n_ctx (64): room for a step's tokens instead
        params.n_batch = params.n_ubatch = max(512, slots + PREFILL_CHUNK)
        params.kv_unified = True  # shared prefixes stored once (llama.cpp's per-sequence
        # streams, the alternative, also crashed here on copying a prefix between them)
        params.n_threads = params.n_threads_batch = threads
        self._ctx = llama_cpp.llama_init_from_model(self._llm.model, params)
        if not self._ctx:
            raise ServiceError(
                f"{model_path}: cannot make a context for {slots} conversations "
                f"({total} tokens of KV cache); lower --max-sessions"
            )
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._text = TokenText(self._llm)
        self._batch_size = int(params.n_batch)
        self._batch = llama_cpp.llama_batch_init(self._batch_size, 0, 1)
        self._slots = [_Slot(seq) for seq in range(slots)]
        self._waiting: list[_Request] = []
        self._cores = cores or CoreShare(threads)
        self._threads = threads
        self._changed = threading.Condition()
        self._closed = False
        self.steps = 0
        """``llama_decode`` calls so far (tests count them)."""
        self.batched_tokens = 0
        """Tokens those calls evaluated."""
        self._scheduler = threading.Thread(
            target=self._run, name="voicegrok-llm-batch", daemon=True
        )
        self._scheduler.start()

    # ------------------------------------------------------------------ callers' side

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        tools: ToolOffer | None = None,
    ) -> Iterator[str]:
        """The answer's pieces; the iterator's ``cancel()``, from any thread, ends it at
        once (a barge-in while it waits for a slot or a token). With ``tools``, the answer
        may be a tool call (as :meth:`LlamaEngine.stream_chat`)."""
        prompt = self.prompt_tokens(messages, tools)
        self._check(prompt)
        sampler = Sampler(self._llm, temperature, TOP_P, REPEAT_PENALTY, self._seed, tools)
        request = _Request(prompt, max_tokens, sampler)
        try:
            self._submit(request)
        except BaseException:
            sampler.__exit__()
            raise
        first = TRIGGER if sampler.calling else ""  # the prompt ends with it
        return Answer(self._pieces(request, first), lambda: self._wake(request))

    def _wake(self, request: _Request) -> None:
        self._cancel(request)
        request.out.put(_CANCELLED)

    def _pieces(self, request: _Request, first: str = "") -> Generator[str, None, None]:
        text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            if first:
                yield first
            while True:
                item = request.out.get()
                if item is _CANCELLED:
                    return
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                assert isinstance(item, bytes)
                piece = text.decode(item)
                if piece:
                    yield piece
            rest = text.decode(b"", final=True)
            if rest:
                yield rest
        finally:
            self._cancel(request)

    def warm_up(
        self,
        messages: Sequence[Message],
        *,
        background: bool = False,
        stop: Stop = None,
        open_end: bool = False,
    ) -> None:
        """Evaluate ``messages`` into a slot's cache; with ``stop``, the wait ends once it
        is set (the request is dropped from the next step). ``open_end``: see
        :meth:`ChatFormat.prompt_tokens`."""
        request = _Request(self.prompt_tokens(messages, open_end=open_end), 0, None)
        self._submit(request)
        while True:
            try:
                item = request.out.get(timeout=None if stop is None else 0.005)
                break
            except queue.Empty:
                assert stop is not None
                if stop.is_set():
                    self._cancel(request)
                    return
        if isinstance(item, BaseException):
            raise item

    def answering(self) -> int:
        """How many requests are being evaluated or answered now."""
        with self._changed:
            return sum(1 for s in self._slots if s.request is not None) + len(self._waiting)

    def close(self) -> None:
        """Stop the scheduler: every request not finished ends with an error."""
        with self._changed:
            if self._closed:
                return
            self._closed = True
            self._changed.notify_all()
        self._scheduler.join()
        self._c.llama_batch_free(self._batch)
        self._c.llama_free(self._ctx)

    def _check(self, prompt: Sequence[int]) -> None:
        if not prompt or len(prompt) > self.n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens, the context holds {self.n_ctx}")

    def _submit(self, request: _Request) -> None:
        self._check(request.prompt)
        with self._changed:
            if self._closed:
                raise ServiceError("the LLM engine is closed")
            self._waiting.append(request)
            self._changed.notify_all()

    def _cancel(self, request: _Request) -> None:
        with self._changed:
            if request in self._waiting:  # not placed yet: gone at once
                self._waiting.remove(request)
                self._finish(request)
            elif not request.finished:
                request.cancelled = True
                self._changed.notify_all()

    # ------------------------------------------------------------------ scheduler thread

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as e:  # nobody waits for ever: every request gets the error
            log.exception("the batching LLM engine failed")
            with self._changed:
                self._closed = True  # and later requests are refused, not left waiting
            self._fail_all(ServiceError(f"the LLM failed: {first_line(e)}"))
            raise
        finally:
            self._fail_all(ServiceError("the LLM engine is closed"))

    def _serve(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._closed or self._has_work())
                if self._closed:
                    return
            with self._cores.generating():
                while True:
                    with self._changed:
                        if self._closed or not self._has_work():
                            break
                        self._place_waiting()
                        self._drop_cancelled()
                        self._cores.serving(sum(1 for s in self._slots if s.request))
                    self._adjust_threads()
                    self._step()
            self._cores.serving(0)

    def _has_work(self) -> bool:
        return bool(self._waiting) or any(s.request is not None for s in self._slots)

    def _place_waiting(self) -> None:
        """Give each waiting request a free slot (first come, first placed)."""
        while self._waiting:
            free = [s for s in self._slots if s.request is None]
            if not free:
                return
            request = self._waiting.pop(0)  # (a cancelled one has left the queue)
            prompt = request.prompt
            slot = min(free, key=lambda s: _placing_cost(s, prompt))
            keep = min(common_prefix(slot.tokens, prompt), len(prompt) - 1)
            donor = max(self._slots, key=lambda s: common_prefix(s.tokens, prompt))
            shared = min(common_prefix(donor.tokens, prompt), len(prompt) - 1)
            if shared > keep and donor is not slot:
                self._c.llama_memory_seq_rm(self._mem, slot.seq, 0, -1)
                self._c.llama_memory_seq_cp(self._mem, donor.seq, slot.seq, 0, shared)
                slot.tokens = donor.tokens[:shared]
                keep = shared
            elif keep < len(slot.tokens):
                if not self._c.llama_memory_seq_rm(self._mem, slot.seq, keep, -1):
                    self._c.llama_memory_seq_rm(self._mem, slot.seq, 0, -1)
                    keep = 0
                del slot.tokens[keep:]
            request.pending = prompt[keep:]
            slot.request = request
            slot.used_at = time.monotonic()

    def _drop_cancelled(self) -> None:
        for slot in self._slots:
            if slot.request is not None and slot.request.cancelled:
                self._finish(slot.request)
                slot.request = None

    def _adjust_threads(self) -> None:
        self._threads = follow_cores(self._cores, self._ctx, self._threads)

    def _step(self) -> None:
        """One ``llama_decode``: the next token of every generating slot, and a chunk of
        each prompt being evaluated; then a token sampled for each slot at its end."""
        batch = self._batch
        n = 0
        taken: list[tuple[_Slot, int]] = []
        sampled: list[tuple[_Slot, int]] = []
        for slot in self._in_this_step():
            request = slot.request
            assert request is not None
            take = request.pending[: min(PREFILL_CHUNK, self._batch_size - n)]
            if not take:
                continue
            last = len(take) == len(request.pending)
            taken.append((slot, len(take)))
            for i, token in enumerate(take):
                batch.token[n] = token
                batch.pos[n] = len(slot.tokens) + i
                batch.n_seq_id[n] = 1
                batch.seq_id[n][0] = slot.seq
                batch.logits[n] = last and i == len(take) - 1
                n += 1
            if last:
                sampled.append((slot, n - 1))
            if n >= self._batch_size:
                break
        if n == 0:
            return
        batch.n_tokens = n
        code = self._c.llama_decode(self._ctx, batch)
        if code == 1:  # the KV cache is full
            if not self._evict():
                self._drop_newest(
                    ServiceError(
                        "the LLM's memory for conversations is full: ask again in a moment"
                    )
                )
            return  # the same work (less what was dropped) is batched again next step
        if code != 0:
            self._fail_all(ServiceError(f"the LLM failed (llama_decode returned {code})"))
            return
        self.steps += 1
        self.batched_tokens += n
        for slot, took in taken:
            assert slot.request is not None
            slot.tokens += slot.request.pending[:took]
            del slot.request.pending[:took]
        for slot, index in sampled:
            self._sample(slot, index)

    def _in_this_step(self) -> list[_Slot]:
        """The slots decoded in the next step. While some answers have not reached their
        first words yet (someone is waiting for the first sound), those further on, whose
        speech is already playing, join only every ``CATCH_UP``-th step: a step's time
        grows with the tokens in it, so the first words come sooner."""
        busy = [s for s in self._slots if s.request is not None]
        if self.steps % CATCH_UP == 0:
            return busy
        waiting = [
            s
            for s in busy
            if s.request and s.request.sampler and s.request.generated < FIRST_WORDS_TOKENS
        ]
        return waiting or busy

    def _sample(self, slot: _Slot, index: int) -> None:
        request = slot.request
        assert request is not None
        if request.sampler is None or request.generated >= request.max_tokens:
            self._release(slot)
            return
        token = request.sampler.sample(self._ctx, index)
        request.generated += 1
        if self._text.is_end(token) or len(slot.tokens) >= self.n_ctx:
            self._answered(slot)
            return
        piece = self._text.piece(token)
        request.written.append((token, piece))
        request.sampler.saw(piece)
        request.out.put(piece)
        if request.generated >= request.max_tokens:
            self._answered(slot)
        else:
            request.pending = [token]

    def _answered(self, slot: _Slot) -> None:
        """The answer is whole: its tokens stand for its text in the conversation's next
        prompt, so that the slot's cache stays that prompt's prefix (as in the plain
        engine)."""
        request = slot.request
        assert request is not None and request.sampler is not None
        if not request.sampler.calling:
            self._chat.remember(request.written)
        self._release(slot)

    def _release(self, slot: _Slot) -> None:
        if slot.request is not None:
            self._finish(slot.request)
        slot.request = None
        slot.used_at = time.monotonic()

    def _finish(self, request: _Request, error: BaseException | None = None) -> None:
        if not request.finished:
            request.finished = True
            request.out.put(_END if error is None else error)
            if request.sampler is not None:
                request.sampler.__exit__()

    def _evict(self) -> bool:
        """The KV cache is full: forget the least recently used idle slot's cache. False
        if every slot holding a cache is answering."""
        idle = [s for s in self._slots if s.request is None and s.tokens]
        if not idle:
            return False
        oldest = min(idle, key=lambda s: s.used_at)
        self._c.llama_memory_seq_rm(self._mem, oldest.seq, 0, -1)
        oldest.tokens = []
        return True

    def _drop_newest(self, error: BaseException) -> None:
        """No room even with every idle cache forgotten: the request placed last ends with
        ``error`` (the others, older, go on) and its sequence is cleared."""
        busy = [s for s in self._slots if s.request is not None]
        newest = max(busy, key=lambda s: s.used_at)
        assert newest.request is not None
        self._finish(newest.request, error)
        newest.request = None
        self._c.llama_memory_seq_rm(self._mem, newest.seq, 0, -1)
        newest.tokens = []

    def _fail_all(self, error: BaseException) -> None:
        """Every request, placed or waiting, ends with ``error``; the caches are cleared."""
        with self._changed:
            for slot in self._slots:
                if slot.request is not None:
                    self._finish(slot.request, error)
                    slot.request = None
                self._c.llama_memory_seq_rm(self._mem, slot.seq, 0, -1)
                slot.tokens = []
            for request in self._waiting:
                self._finish(request, error)
            self._waiting.clear()
