"""A llama.cpp context's KV cache (sequence 0) and the tokens in it, fed with ``llama_decode``."""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["STOPPABLE_CHUNK", "Decoder", "chance", "common_prefix", "last_logits"]

STOPPABLE_CHUNK = 16
"""Tokens of a prompt evaluated between two looks at its stop flag (a quarter of a second
for a 1.5B model on 2 cores; the cost per token is about the same in chunks this size)."""


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from their start."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def last_logits(ctx: Any, n_vocab: int) -> npt.NDArray[np.float32]:
    """The logits llama.cpp computed for the last token of ``ctx``'s latest batch: a view
    of its buffer, good until the next ``llama_decode``."""
    import llama_cpp

    row = llama_cpp.llama_get_logits_ith(ctx, -1)
    return np.ctypeslib.as_array(
        ctypes.cast(row, ctypes.POINTER(ctypes.c_float)), shape=(n_vocab,)
    )


def chance(logits: npt.NDArray[np.float32], token: int) -> float:
    """The probability of ``token`` under ``logits`` (their softmax, in float64)."""
    odds = np.exp(logits.astype(np.float64) - float(logits.max()))
    return float(odds[token] / odds.sum())


def _chunks(tokens: list[int], step: int, most: int) -> list[list[int]]:
    """``tokens`` in chunks of ``step``; a tail shorter than half a step goes with the
    chunk before it (as long as that fits in ``most``): a chunk of one or two tokens costs
    a whole pass over the weights, as a full one does."""
    chunks = [tokens[i : i + step] for i in range(0, len(tokens), step)]
    if len(chunks) > 1 and 2 * len(chunks[-1]) < step and step + len(chunks[-1]) <= most:
        tail = chunks.pop()
        chunks[-1] = chunks[-1] + tail
    return chunks


class Decoder:
    """The context's KV cache (sequence 0) and the tokens in it, fed with ``llama_decode``."""

    def __init__(self, llm: Any) -> None:
        import llama_cpp

        self._c = llama_cpp
        self.ctx = llm.ctx
        self._mem = llama_cpp.llama_get_memory(self.ctx)
        self._n_batch = int(llm.n_batch)
        self._n_ctx = int(llm.n_ctx())
        self.tokens: list[int] = []
        """What the KV cache holds, in order."""
        self._fresh = False
        """The context's logits are those after ``tokens[-1]`` (a sample may be drawn)."""
        self._one = (llama_cpp.llama_token * 1)()
        self._batch: Any = None
        self._capacity = 0

    @property
    def full(self) -> bool:
        return len(self.tokens) >= self._n_ctx

    def evaluate(
        self,
        prompt: Sequence[int],
        stop: threading.Event | None = None,
        between: Callable[[], None] | None = None,
    ) -> bool:
        """Make the cache hold ``prompt``: keep the prefix it shares with what is there,
        evaluate the rest (at least the last token: its logits are the next sample's).

        With ``stop``, the rest is evaluated :data:`STOPPABLE_CHUNK` tokens at a time and
        given up between two chunks once ``stop`` is set (an answer withdrawn while its
        prompt is evaluated: a bigger model's prompt takes a second or more). The cache
        then holds a prefix of the prompt, and False is returned. ``between`` is called
        before each chunk but the first (the same chunks)."""
        if not prompt or len(prompt) > self._n_ctx:
            raise ValueError(f"prompt of {len(prompt)} tokens, the context holds {self._n_ctx}")
        keep = common_prefix(self.tokens, prompt)
        if keep == len(prompt) == len(self.tokens) and self._fresh:
            return True
        keep = min(keep, len(prompt) - 1)
        if keep < len(self.tokens):
            if not self._c.llama_memory_seq_rm(self._mem, 0, keep, -1):
                self._c.llama_memory_clear(self._mem, True)  # a recurrent model: start over
                keep = 0
            del self.tokens[keep:]
        self._fresh = False
        rest = list(prompt[keep:])
        chunked = stop is not None or between is not None
        step = min(self._n_batch, STOPPABLE_CHUNK) if chunked else self._n_batch
        for i, chunk in enumerate(_chunks(rest, step, self._n_batch)):
            if stop is not None and stop.is_set():
                return False
            if between is not None and i:
                between()
            self._decode(chunk)
        return True

    def evaluate_next(self, token: int) -> None:
        self._one[0] = token
        self._decode_array(self._one, [token])

    def _decode(self, tokens: list[int]) -> None:
        self._decode_array((self._c.llama_token * len(tokens))(*tokens), tokens)

    def _decode_array(self, array: Any, tokens: list[int]) -> None:
        batch = self._c.llama_batch_get_one(array, len(tokens))
        code = self._c.llama_decode(self.ctx, batch)
        if code != 0:
            self._fresh = False
            raise RuntimeError(f"llama_decode failed ({code})")
        self.tokens += tokens
        self._fresh = True

    @property
    def room(self) -> int:
        """Tokens the context can still take."""
        return self._n_ctx - len(self.tokens)

    @property
    def n_ctx(self) -> int:
        return self._n_ctx

    def evaluate_all(self, tokens: Sequence[int]) -> None:
        """Evaluate ``tokens`` after the cache's, with the logits after each of them (row
        ``i`` of the output: the next token after ``tokens[i]``)."""
        c = self._c
        n = len(tokens)
        if n > self._capacity:
            if self._batch is not None:
                c.llama_batch_free(self._batch)
            self._batch = c.llama_batch_init(max(n, 8), 0, 1)
            self._capacity = max(n, 8)
        batch = self._batch
        start = len(self.tokens)
        for i, token in enumerate(tokens):
            batch.token[i] = token
            batch.pos[i] = start + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = 1
        batch.n_tokens = n
        code = c.llama_decode(self.ctx, batch)
        if code != 0:
            self._fresh = False
            raise RuntimeError(f"llama_decode failed ({code})")
        self.tokens += tokens
        self._fresh = True

    def drop(self, n: int) -> None:
        """Forget the last ``n`` tokens of the cache."""
        if n <= 0:
            return
        keep = len(self.tokens) - n
        self._c.llama_memory_seq_rm(self._mem, 0, keep, -1)
        del self.tokens[keep:]
        self._fresh = False
