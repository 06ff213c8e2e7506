"""A conversation as a llama.cpp model's tokens: its chat template (the GGUF's own),
token counts, and answers kept as the tokens the model wrote."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from ..conversation import Message
from ..tools.calls import TRIGGER, ToolOffer, instructions

__all__ = ["ChatFormat", "chat_formatter"]

_PER_MESSAGE_TOKENS = 8
"""Template tokens around each message (role markers); a safe over-estimate."""
_REMEMBERED_ANSWERS = 16
"""Answers whose tokens are kept: more than a trimmed history holds."""
_MIN_REMEMBERED_CHARS = 16
"""Shorter answers are not kept: their text could occur elsewhere in a prompt."""


class ChatFormat:
    """A conversation as the model's tokens: its chat template, and token counts."""

    def __init__(self, llm: Any) -> None:
        self._llm = llm
        self._format = chat_formatter(llm)
        template = llm.metadata.get("tokenizer.chat_template") or ""
        self.takes_tools = "tools" in template
        """The chat template lays out a list of tools itself (Qwen2.5's does)."""
        self._written: dict[str, list[int]] = {}
        """Recent answers' texts, and the tokens the model wrote for each."""
        self._lock = threading.Lock()
        """The batching engine remembers on its scheduler thread while callers tokenize."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        total = 0
        for m in messages:
            total += len(self._llm.tokenize(m["content"].encode(), add_bos=False, special=False))
            total += _PER_MESSAGE_TOKENS
        return total

    def prompt_tokens(
        self, messages: Sequence[Message], tools: ToolOffer | None = None, *, open_end: bool = False
    ) -> list[int]:
        """``messages`` in the model's chat template, ending with the assistant's cue;
        with ``tools`` offered (in the template, else in the system prompt), and the start
        of a call after the cue when one is required.

        ``open_end``: the last message's words are what a person has said so far, and the
        prompt ends with them. The final words' prompt shares all of it; the message's end
        and the assistant's cue would be cut from the cache again (5 tokens in ChatML:
        evaluated with the words heard so far, they made each such warm-up on the 1.5B
        150-250 ms longer on 2 cores, and a warm-up still running held the answer back)."""
        chat: list[dict[str, Any]] = [dict(m) for m in messages]
        schemas = None
        if tools is not None:
            if self.takes_tools:
                schemas = list(tools.schemas)
            elif chat and chat[0]["role"] == "system":
                chat[0]["content"] += instructions(tools.schemas)
            else:
                chat.insert(0, {"role": "system", "content": instructions(tools.schemas)})
        result = self._format(messages=chat, tools=schemas)
        prompt: str = result.prompt
        words = chat[-1]["content"] if open_end and chat else ""
        if words and (at := prompt.rfind(words)) >= 0:
            prompt = prompt[: at + len(words)]
        elif tools is not None and tools.required:
            prompt += TRIGGER
        return self._spliced(prompt, add_bos=not result.added_special)

    def remember(self, written: Sequence[tuple[int, bytes]]) -> None:
        """Keep an answer's tokens as the model wrote them (each with its bytes), to stand
        for its text in the prompts that follow (see :meth:`_spliced`)."""
        kept = list(written)
        while kept and not kept[0][1].strip():
            kept.pop(0)  # the history keeps the answer's text stripped
        while kept and not kept[-1][1].strip():
            kept.pop()
        try:
            text = b"".join(raw for _, raw in kept).decode("utf-8")
        except UnicodeDecodeError:
            return
        if text != text.strip() or len(text) < _MIN_REMEMBERED_CHARS:
            return
        with self._lock:
            self._written.pop(text, None)
            self._written[text] = [token for token, _ in kept]
            while len(self._written) > _REMEMBERED_ANSWERS:
                del self._written[next(iter(self._written))]

    def _spliced(self, prompt: str, *, add_bos: bool) -> list[int]:
        """``prompt`` tokenized, each answer remembered (:meth:`remember`) that it holds
        once given as the tokens the model wrote.

        The text of an answer tokenized again is often not the tokens the model wrote
        ("accessible" is one token, and the 1.5B wrote "access", "ible"): the KV cache,
        which holds what it wrote, then matches the next prompt only up to there. In the
        demo, the fourth question re-evaluated the last 120 tokens of the third answer
        before its first token (2.4 s on the 1.5B). The text around an answer ends and
        starts at the chat template's special tokens, so tokenizing it apart gives the
        tokens it has in the whole."""
        with self._lock:
            written = dict(self._written)
        spans = sorted(
            (at, text)
            for text in written
            if (at := prompt.find(text)) >= 0 and prompt.count(text) == 1
        )
        tokens: list[int] = []
        start = 0
        for at, text in spans:
            if at < start:
                continue  # (an answer inside another: the outer one is spliced)
            tokens += self._tokenize(prompt[start:at], add_bos=add_bos and start == 0)
            tokens += written[text]
            start = at + len(text)
        return tokens + self._tokenize(prompt[start:], add_bos=add_bos and start == 0)

    def _tokenize(self, text: str, *, add_bos: bool) -> list[int]:
        if not text and not add_bos:
            return []
        tokens: list[int] = self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        return tokens


def chat_formatter(llm: Any) -> Any:
    """The GGUF's own chat template (as ``create_chat_completion`` uses it), or Llama 2's
    format for the rare model without one."""
    from llama_cpp import llama_chat_format

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return llama_chat_format.format_llama2

    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def text(token: int) -> str:
        return llama_cpp.llama_vocab_get_text(vocab, token).decode() if token != -1 else ""

    return llama_chat_format.Jinja2ChatFormatter(
        template=template,
        eos_token=text(llm.token_eos()),
        bos_token=text(llm.token_bos()),
    )
