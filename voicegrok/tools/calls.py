"""Tool calls in the model's own format, and the grammar that keeps their arguments valid.

The format is the one Qwen2.5 and Hermes-style templates use: the answer is
``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` instead of words. A model whose
chat template takes ``tools`` is given them there; any other gets the same format described
in its system prompt (:func:`instructions`).

Once an answer begins with ``<tool_call>`` (or at once, when a call is required), it is
sampled under a GBNF grammar built from the tools' JSON schemas (llama.cpp's JSON-schema
converter): the call always parses, names a tool offered and has the arguments its schema
asks for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..conversation import TOOL_CALL as TRIGGER
from ..conversation import TOOL_CALL_END as END
from .base import Tool, ToolCall

__all__ = ["END", "TRIGGER", "ToolOffer", "classify", "instructions", "offer", "parse_call"]


@dataclass(frozen=True)
class ToolOffer:
    """What an engine needs to let the model call tools."""

    schemas: tuple[dict[str, Any], ...]
    """The tools in the OpenAI chat format (what chat templates take)."""
    grammar: str
    """GBNF of one call, with leading whitespace (the text after ``TRIGGER``)."""
    required: bool = False
    """The answer must be a call (``tool_choice`` ``required`` or a named tool)."""


Choice = Literal["auto", "required"] | str


def offer(tools: Sequence[Tool], choice: Choice = "auto") -> ToolOffer | None:
    """The offer of ``tools`` (None: nothing to offer). ``choice`` ``required``: a call must
    be made; a tool's name: that tool must be called."""
    if choice not in ("auto", "required"):
        tools = [t for t in tools if t.name == choice]
    if not tools:
        return None
    return ToolOffer(
        tuple(t.schema() for t in tools),
        call_grammar(tools),
        required=choice != "auto",
    )


def call_grammar(tools: Sequence[Tool]) -> str:
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    alternatives = [
        {
            "type": "object",
            "properties": {
                "name": {"const": t.name},
                "arguments": t.parameters or {"type": "object"},
            },
            "required": ["name", "arguments"],
        }
        for t in tools
    ]
    schema = alternatives[0] if len(alternatives) == 1 else {"oneOf": alternatives}
    gbnf: str = json_schema_to_gbnf(json.dumps(schema))
    lines = [
        "call ::=" + line[len("root ::=") :] if line.startswith("root ::=") else line
        for line in gbnf.splitlines()
    ]
    # JSON strings hold no raw control characters (the converter lets them through, and a
    # small model then runs on inside a string, past its closing quote's place)
    lines = [
        line.replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x7F\\x00-\\x1F]') for line in lines
    ]
    return "root ::= [ \\t\\n]* call\n" + "\n".join(lines) + "\n"


def instructions(schemas: Sequence[dict[str, Any]]) -> str:
    """Tools described in a system prompt, for a chat template that takes none."""
    listed = "\n".join(json.dumps(s["function"], ensure_ascii=False) for s in schemas)
    return (
        "\n\nYou can call these tools:\n"
        f"<tools>\n{listed}\n</tools>\n"
        "When a tool gives the answer, reply with only the call, as "
        f'{TRIGGER}{{"name": "...", "arguments": {{...}}}}{END}, '
        "and answer once you have its result."
    )


def classify(text: str) -> Literal["call", "maybe", "answer"]:
    """An answer's beginning: a tool call, still possibly one, or words."""
    head = text.lstrip()
    if head.startswith(TRIGGER):
        return "call"
    return "maybe" if TRIGGER.startswith(head) else "answer"


def parse_call(text: str) -> ToolCall | None:
    """The call in an answer that :func:`classify` says is one (None: it does not parse,
    e.g. cut short by the token limit)."""
    head = text.lstrip()
    if not head.startswith(TRIGGER):
        return None
    body = head[len(TRIGGER) :].split(END, 1)[0].strip()
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", {})
    if isinstance(arguments, str):  # some servers send the arguments as a JSON string
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            return None
    if not isinstance(arguments, dict):
        return None
    return ToolCall(data["name"], arguments)
