"""llama-cpp-python chat model (any GGUF with a chat template)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..conversation import Message
from ..errors import ModelError, first_line
from ..threads import CoreShare

__all__ = ["LlamaEngine"]

_PER_MESSAGE_TOKENS = 8
"""Template tokens around each message (role markers); a safe over-estimate."""


TOP_P = 0.9
REPEAT_PENALTY = 1.15
"""Sampling defaults (``voicegrok bench`` runs the bare model with the same ones)."""


class LlamaEngine:
    """Blocking streamed chat completion. The KV cache keeps the shared prefix of the
    conversation between turns, so each turn evaluates only the new messages."""

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 2048,
        threads: int = 2,
        seed: int = 0,
        repeat_penalty: float = REPEAT_PENALTY,
        top_p: float = TOP_P,
        cores: CoreShare | None = None,
    ) -> None:
        from llama_cpp import Llama

        try:
            self._llm: Any = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                seed=seed,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as e:
            raise ModelError(
                f"{model_path}: cannot load the GGUF model ({first_line(e)}); "
                "pass --llm-model a valid .gguf file"
            ) from None
        self.n_ctx: int = int(self._llm.n_ctx())
        self.path = model_path
        self._repeat_penalty = repeat_penalty
        self._top_p = top_p
        self._seed = seed
        self._lock = threading.Lock()
        self._cores = cores or CoreShare(threads)
        self._threads = threads

    def count_tokens(self, messages: Sequence[Message]) -> int:
        total = 0
        for m in messages:
            total += len(self._llm.tokenize(m["content"].encode(), add_bos=False, special=False))
            total += _PER_MESSAGE_TOKENS
        return total

    def stream_chat(
        self, messages: Sequence[Message], *, max_tokens: int, temperature: float
    ) -> Iterator[str]:
        with self._lock, self._cores.generating():
            self._adjust_threads()  # the prompt is evaluated with the cores free now
            chunks = self._llm.create_chat_completion(
                messages=[dict(m) for m in messages],
                stream=True,
                max_tokens=max_tokens,
                temperature=temperature,
                top_p=self._top_p,
                repeat_penalty=self._repeat_penalty,
                seed=self._seed,
            )
            try:
                for chunk in chunks:
                    self._adjust_threads()
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()

    def _adjust_threads(self) -> None:
        """Between two tokens: follow the core share (fewer threads while speech is made,
        none while the first clause is synthesized with every core)."""
        self._cores.wait_for_cores()
        wanted = min(self._cores.llm_threads(), self._cores.cores)
        if wanted != self._threads:
            import llama_cpp

            llama_cpp.llama_set_n_threads(self._llm.ctx, wanted, wanted)
            self._threads = wanted

    def warm_up(self, messages: Sequence[Message]) -> None:
        """Evaluate ``messages`` once so the first real turn finds them in the KV cache."""
        for _ in self.stream_chat(messages, max_tokens=1, temperature=0.0):
            pass
