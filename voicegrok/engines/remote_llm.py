"""A chat model on another machine: any OpenAI-compatible ``/v1/chat/completions``
endpoint, streamed (llama.cpp's ``llama-server``, llama-cpp-python's ``llama_cpp.server``,
vLLM, SGLang, or OpenAI itself), through the official ``openai`` client.

Nothing is evaluated ahead of time here (``warm_up`` does nothing): servers such as
``llama-server`` and vLLM reuse the prompt prefix a conversation's turns share by
themselves. Closing the stream (a barge-in) closes the HTTP response, which is how these
servers learn to stop generating.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit, urlunsplit

from ..conversation import Message
from ..errors import ModelError, ServiceError, first_line
from ..tools.calls import TRIGGER, ToolOffer, parse_call
from . import Stop

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

__all__ = ["API_KEY_ENV", "RemoteChatModel", "base_url"]

API_KEY_ENV = "VOICEGROK_LLM_API_KEY"
"""Where ``--llm-api-key`` is read from when it is not given (a key on the command line
shows in the process list)."""

_BYTES_PER_TOKEN = 3.0
"""The prompt's length is estimated, not counted (the API has no tokenizer): BPE
vocabularies average about 4 bytes of English per token; 3 over-estimates, so a trimmed
conversation fits."""
_PER_MESSAGE_TOKENS = 8


def base_url(url: str) -> str:
    """The API root of ``url``: ``http://host:8080``, ``http://host:8080/v1`` and
    ``http://host:8080/v1/chat/completions`` all give ``http://host:8080/v1``.
    Raises ModelError if it is not an http(s) URL."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ModelError(
            f"--llm-url {url!r} is not an http(s) URL; give the server's address, "
            "e.g. http://localhost:8080/v1"
        )
    path = parts.path.rstrip("/")
    for tail in ("/chat/completions", "/completions"):
        path = path.removesuffix(tail)
    if not path:
        path = "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class RemoteChatModel:
    """Blocking streamed chat completion from an OpenAI-compatible server."""

    concurrent = True
    """Each conversation streams from a thread of its own: the server batches them (vLLM,
    llama-server with several slots), or queues them itself."""

    def __init__(
        self,
        url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        n_ctx: int = 2048,
        timeout_s: float = 30.0,
        seed: int | None = None,
    ) -> None:
        import openai

        self.url = base_url(url)
        self.n_ctx = n_ctx
        self._seed = seed
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.url,
            # servers of one's own take any key; the client insists on having one
            api_key=api_key or os.environ.get(API_KEY_ENV) or "none",
            timeout=timeout_s,
            max_retries=0,  # a person is waiting: say it failed, don't retry for a minute
        )
        self.model = model or self._served_model()

    def _served_model(self) -> str:
        """The first model the server lists (llama.cpp's servers serve one)."""
        try:
            listed = [m.id for m in self._client.models.list()]
        except self._openai.APIError as e:
            raise ServiceError(self._failure(e) + "; start it, or fix --llm-url") from None
        if not listed:
            raise ServiceError(
                f"the LLM server at {self.url} lists no model; name one with --llm-model"
            )
        return listed[0]

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(
            math.ceil(len(m["content"].encode()) / _BYTES_PER_TOKEN) + _PER_MESSAGE_TOKENS
            for m in messages
        )

    def stream_chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int,
        temperature: float,
        tools: ToolOffer | None = None,
    ) -> Iterator[str]:
        """The answer's pieces; with ``tools``, the server's tool call comes as the text
        of one (see :mod:`voicegrok.tools.calls`)."""
        omit = self._openai.omit
        try:
            stream = self._client.chat.completions.create(
                model=self.model,
                messages=cast("list[ChatCompletionMessageParam]", wire_messages(messages)),
                max_tokens=max_tokens,
                temperature=temperature,
                stream=True,
                seed=omit if self._seed is None else self._seed,
                tools=cast("Any", list(tools.schemas)) if tools is not None else omit,
                tool_choice=("required" if tools.required else "auto") if tools else omit,
            )
        except self._openai.APIError as e:
            raise ServiceError(self._failure(e)) from None
        finished = False
        calling = False
        try:
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content and not calling:
                        yield choice.delta.content
                    for call in choice.delta.tool_calls or []:
                        function = call.function
                        if function is None:
                            continue
                        if not calling and function.name:
                            calling = True  # (only the first call is made)
                            yield f'{TRIGGER}{{"name": {json.dumps(function.name)}, "arguments": '
                        if calling and call.index == 0 and function.arguments:
                            yield function.arguments
                    finished = finished or choice.finish_reason is not None
            if calling:
                yield "}"
        except self._openai.APIError as e:
            raise ServiceError(self._failure(e)) from None
        finally:
            stream.close()  # also on a barge-in (GeneratorExit): the server stops
        if not finished:
            raise ServiceError(
                f"the LLM server at {self.url} stopped the answer without finishing it "
                "(did another request interrupt it? llama_cpp.server does unless started "
                "with --interrupt_requests False)"
            )

    def warm_up(
        self,
        messages: Sequence[Message],
        *,
        background: bool = False,
        stop: Stop = None,
        open_end: bool = False,
    ) -> None:
        """Nothing to do: the server keeps its own prompt cache."""

    def _failure(self, e: Exception) -> str:
        """One line for a failed request."""
        if isinstance(e, self._openai.APIStatusError):
            return f"the LLM server at {self.url} answered {e.status_code}: {_detail(e)}"
        if isinstance(e, self._openai.APITimeoutError):
            return f"the LLM server at {self.url} did not answer in time"
        if isinstance(e, self._openai.APIConnectionError):
            cause = e.__cause__ or e
            return f"cannot reach the LLM server at {self.url} ({first_line(cause)})"
        return f"the LLM server at {self.url} failed: {first_line(e)}"


def wire_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages as the chat completions API takes them: a tool call written as text
    (``<tool_call>{...}</tool_call>``) becomes an assistant message's ``tool_calls``, and
    the ``tool`` message after it names that call."""
    out: list[dict[str, Any]] = []
    call_id = ""
    for i, m in enumerate(messages):
        written = m["role"] == "assistant" and m["content"].startswith(TRIGGER)
        call = parse_call(m["content"]) if written else None
        if call is not None:
            call_id = f"call_{i}"
            function = {"name": call.name, "arguments": json.dumps(call.arguments)}
            out.append(
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [{"id": call_id, "type": "function", "function": function}],
                }
            )
        elif m["role"] == "tool":
            out.append({"role": "tool", "tool_call_id": call_id, "content": m["content"]})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def _detail(e: Any) -> str:
    """The error message a server put in its body, else the exception's first line."""
    body = getattr(e, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return first_line(Exception(str(message)))
    return first_line(e)
