"""What a tool is: a name, a JSON-schema signature, and a function that answers.

A tool answers with a :class:`Outcome`: a short fact for the language model (``output``)
and, for the built-in tools, the sentence a person hears (``say``). Tools run on the event
loop: the built-in ones are pure and bounded (microseconds), and a tool that waits (an MCP
server) awaits.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .timers import Timers

__all__ = [
    "Outcome",
    "Tool",
    "ToolCall",
    "ToolContext",
    "ToolError",
    "arguments_json",
    "client_tool",
    "new_call_id",
    "sync_tool",
]


class ToolError(Exception):
    """A call a tool cannot carry out (bad arguments, an unknown unit); the message is
    one line, said to the person or given to the model as the call's output."""


@dataclass(frozen=True)
class Outcome:
    output: str
    """The result as the language model (or a Realtime client) gets it."""
    say: str = ""
    """The answer as spoken, when the tool can give it whole (built-in tools)."""
    error: bool = False


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any]
    call_id: str = ""


def _local_now() -> datetime:
    return datetime.now().astimezone()


@dataclass
class ToolContext:
    """What the built-in tools of one conversation share."""

    timers: Timers | None = None
    """The conversation's timers (None: no timer tools, e.g. a one-shot ``ask``)."""
    now: Callable[[], datetime] = _local_now
    """The local time, with its time zone (tests set it)."""


Run = Callable[[dict[str, Any]], Awaitable[Outcome]]


@dataclass(frozen=True)
class Tool:
    """A tool the assistant can call."""

    name: str
    description: str
    parameters: dict[str, Any]
    """A JSON schema of an object: the call's arguments."""
    run: Run
    match: Callable[[str], dict[str, Any] | None] | None = field(default=None, compare=False)
    """Built-in tools: the call's arguments when a request says plainly that it wants this
    tool ("what is 12 times 12"), else None. See :mod:`voicegrok.tools.router`."""
    slow: bool = False
    """Calls may take seconds: a short filler is said first."""
    source: str = "builtin"
    """``builtin``, ``mcp:<server>`` or ``client`` (a Realtime client's own function)."""
    acts: bool = True
    """Calls change something outside the conversation (a timer set, whatever an MCP
    server's tool does): one is made only once the turn is let out, never for an answer
    prepared at a pause in the person's words (they may go on, and it is withdrawn)."""

    def schema(self) -> dict[str, Any]:
        """The tool in the OpenAI chat format (also what chat templates take)."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


_call_ids = itertools.count(1)


def new_call_id() -> str:
    return f"call_{next(_call_ids)}"


def arguments_json(arguments: dict[str, Any]) -> str:
    return json.dumps(arguments, ensure_ascii=False, separators=(", ", ": "))


def client_tool(name: str, description: str, parameters: dict[str, Any]) -> Tool:
    """A function of a Realtime client's: the model may call it, the client runs it."""

    async def run(arguments: dict[str, Any]) -> Outcome:
        raise ToolError(f"{name} runs on the client")

    return Tool(name, description, parameters, run, source="client")


def sync_tool(
    name: str,
    description: str,
    parameters: dict[str, Any],
    function: Callable[[dict[str, Any]], Outcome],
    match: Callable[[str], dict[str, Any] | None] | None = None,
    *,
    acts: bool = False,
) -> Tool:
    """A tool from a plain function (quick: run on the loop; ``acts``: see :attr:`Tool.acts`)."""

    async def run(arguments: dict[str, Any]) -> Outcome:
        return function(arguments)

    return Tool(name, description, parameters, run, match, acts=acts)
