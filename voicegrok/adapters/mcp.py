"""Tools of Model Context Protocol servers, through the official ``mcp`` SDK: each server
named in the config (a command run over stdio, or a streamable-HTTP URL) is connected
once per process, and its tools become the LLM's (:class:`~voicegrok.tools.Tool`, source
``mcp:<server>``).

A server that cannot be started or reached is reported in one line and left out: the
assistant runs without its tools. A call that fails (the server's error, a timeout, the
server gone) is the call's error, given to the model as its output.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import platformdirs

from ..errors import first_line
from ..tools.base import Outcome, Tool, ToolError
from ..userconfig import McpServer

__all__ = ["mcp_tools"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 20.0
CALL_TIMEOUT_S = 30.0


class _Connection:
    """One server's session, held open by a task of its own (the SDK's context must be
    left in the task that entered it); calls come from any task."""

    def __init__(self, server: McpServer) -> None:
        self.server = server
        self.tools: list[Tool] = []
        self._client: Any = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._hold())

    async def _hold(self) -> None:
        from mcp import Client, StdioServerParameters
        from mcp.client.stdio import stdio_client

        s = self.server
        target: Any = s.url
        errors = contextlib.ExitStack()
        if s.command is not None:
            params = StdioServerParameters(command=s.command, args=list(s.args), env=dict(s.env))
            # what the server prints goes to its log, not into the conversation
            target = stdio_client(params, errlog=errors.enter_context(self.log_path().open("a")))
        try:
            async with Client(target, read_timeout_seconds=CALL_TIMEOUT_S) as client:
                self._client = client
                listed = await client.list_tools()
                self.tools = [self._tool(t) for t in listed.tools]
                self._ready.set_result(None)
                await self._stop.wait()
        except BaseException as e:
            if not self._ready.done():
                self._ready.set_exception(e)
            elif not isinstance(e, asyncio.CancelledError):
                log.warning("MCP server %s: %s", s.name, first_line(e))
            if isinstance(e, asyncio.CancelledError):
                raise
        finally:
            self._client = None
            errors.close()

    def log_path(self) -> Path:
        folder = Path(platformdirs.user_log_dir("voicegrok", appauthor=False))
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"mcp-{self.server.name}.log"

    async def ready(self) -> None:
        await asyncio.wait_for(asyncio.shield(self._ready), CONNECT_TIMEOUT_S)

    def _tool(self, spec: Any) -> Tool:
        name = spec.name

        async def run(arguments: dict[str, Any]) -> Outcome:
            return await self.call(name, arguments)

        return Tool(
            name,
            spec.description or "",
            dict(spec.input_schema or {"type": "object"}),
            run,
            slow=True,
            source=f"mcp:{self.server.name}",
        )

    async def call(self, name: str, arguments: dict[str, Any]) -> Outcome:
        client = self._client
        if client is None:
            raise ToolError(f"the MCP server {self.server.name} is gone")
        try:
            result = await client.call_tool(name, arguments)
        except Exception as e:
            raise ToolError(f"{self.server.name}: {first_line(e)}") from None
        text = "\n".join(
            getattr(block, "text", "") for block in result.content if getattr(block, "text", "")
        )
        if result.is_error:
            raise ToolError(text or f"{name} failed")
        return Outcome(output=text or "(no output)")

    async def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(BaseException):
            await asyncio.wait_for(self._task, 10)
        if not self._task.done():
            self._task.cancel()


@contextlib.asynccontextmanager
async def mcp_tools(
    servers: Sequence[McpServer], notify: Callable[[str], None] = lambda _line: None
) -> AsyncIterator[list[Tool]]:
    """Connect to ``servers`` and give their tools; each one that fails is reported to
    ``notify`` in one line and left out. Disconnects (and stops stdio servers) on exit."""
    connections = [_Connection(s) for s in servers]
    tools: list[Tool] = []
    live: list[_Connection] = []
    for c in connections:
        try:
            await c.ready()
        except BaseException as e:
            if isinstance(e, asyncio.CancelledError):
                raise
            where = c.server.command or c.server.url
            notify(
                f"MCP server {c.server.name} ({where}) could not be used: "
                f"{first_line(e) or type(e).__name__}; its tools are left out"
            )
            await c.close()
            continue
        live.append(c)
        taken = {t.name for t in tools}
        tools += [t if t.name not in taken else _renamed(t, c.server.name) for t in c.tools]
    try:
        yield tools
    finally:
        for c in live:
            await c.close()


def _renamed(tool: Tool, server: str) -> Tool:
    """A tool whose name another server's tool has: named after its server too."""
    from dataclasses import replace

    return replace(tool, name=f"{server}_{tool.name}")
