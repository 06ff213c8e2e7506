"""The tools of one conversation: the built-in ones (unless switched off), an MCP
server's, a Realtime client's own functions."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from ..errors import first_line
from .base import Outcome, Tool, ToolCall, ToolContext, ToolError

__all__ = ["Toolbox"]

log = logging.getLogger(__name__)


class Toolbox:
    """Tools by name. Not thread-safe: used on the event loop of its conversation."""

    def __init__(self, tools: Iterable[Tool] = (), context: ToolContext | None = None) -> None:
        self.context = context or ToolContext()
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    @classmethod
    def builtin(cls, context: ToolContext | None = None) -> Toolbox:
        from .builtin import builtin_tools

        context = context or ToolContext()
        return cls(builtin_tools(context), context)

    def add(self, tool: Tool) -> None:
        self._tools[tool.name] = tool

    def remove(self, source: str) -> None:
        """Drop every tool from ``source`` (e.g. ``client``: the client's tools changed)."""
        self._tools = {k: t for k, t in self._tools.items() if t.source != source}

    def replace(self, source: str, tools: Iterable[Tool]) -> None:
        """The tools from ``source`` are now ``tools``."""
        self.remove(source)
        for tool in tools:
            self.add(tool)

    def use_builtin(self, on: bool) -> None:
        """Switch the built-in tools on or off."""
        from .builtin import builtin_tools

        self.replace("builtin", builtin_tools(self.context) if on else [])

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Any:
        return iter(self._tools.values())

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def names(self) -> list[str]:
        return list(self._tools)

    def schemas(self) -> list[dict[str, Any]]:
        return [t.schema() for t in self._tools.values()]

    def route(self, text: str) -> ToolCall | None:
        """A built-in tool's call when ``text`` plainly asks for it, else None."""
        for tool in self._tools.values():
            if tool.match is None:
                continue
            try:
                arguments = tool.match(text)
            except Exception:  # a phrase matcher's bug must not cost the turn
                log.exception("tool %s: matching %r failed", tool.name, text)
                continue
            if arguments is not None:
                return ToolCall(tool.name, arguments)
        return None

    async def call(self, call: ToolCall) -> Outcome:
        """Run ``call``; whatever goes wrong becomes an error outcome (one line), said to
        the person or given to the model."""
        tool = self._tools.get(call.name)
        if tool is None:
            return _failed(f"there is no tool called {call.name!r}")
        try:
            return await tool.run(call.arguments)
        except ToolError as e:
            return _failed(str(e))
        except Exception as e:
            log.exception("tool %s failed", call.name)
            return _failed(f"the {call.name} tool failed ({first_line(e)})")


def _failed(message: str) -> Outcome:
    return Outcome(output=f"error: {message}", say=f"Sorry, {message}.", error=True)
