"""Tools of MCP servers, through the official ``mcp`` SDK: a real server started by the
test (tests/data/mcp_notes.py), over stdio and over streamable HTTP; its tool called by
the model for a Realtime client, through voicegrok serve."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from voicegrok.adapters.mcp import mcp_tools
from voicegrok.assistant import Assistant, Engines
from voicegrok.errors import UsageError
from voicegrok.tools import ToolError
from voicegrok.userconfig import McpServer, load_user_config, save_user_config

from .conftest import ask_item, serve
from .test_server import sdk, until_done

NOTES = Path(__file__).parent / "data" / "mcp_notes.py"


def stdio_server(log: Path) -> McpServer:
    return McpServer(
        "notes", command=sys.executable, args=(str(NOTES),), env=(("NOTES_LOG", str(log)),)
    )


def calls(log: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The notes server over streamable HTTP, on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "http_calls.jsonl"
    proc = subprocess.Popen(
        [sys.executable, str(NOTES), "http", str(port)],
        env={"NOTES_LOG": str(log), "PATH": "/usr/bin:/bin"},
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline and proc.poll() is None, "no MCP server"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp", log
    finally:
        proc.terminate()
        proc.wait(10)


async def test_a_stdio_and_an_http_server_s_tools_are_called(
    tmp_path: Path, http_server: tuple[str, Path]
) -> None:
    url, http_log = http_server
    log = tmp_path / "calls.jsonl"
    lines: list[str] = []
    servers = [
        stdio_server(log),
        McpServer("remote", url=url),
        McpServer("missing", command="/nonexistent/voicegrok-mcp"),
    ]
    async with mcp_tools(servers, lines.append) as tools:
        names = [t.name for t in tools]
        assert names == ["read_note", "remote_read_note"], names  # the second one renamed
        assert tools[0].source == "mcp:notes" and tools[1].source == "mcp:remote"
        assert tools[0].parameters["required"] == ["topic"]
        out = await tools[0].run({"topic": "shopping"})
        assert out.output == "The note about shopping says: buy oat milk and call Ana at 5."
        out = await tools[1].run({"topic": "work"})
        assert "The note about work" in out.output
        with pytest.raises(ToolError):
            await tools[0].run({"topic": "broken"})
    assert calls(log) == [
        {"tool": "read_note", "topic": "shopping"},
        {"tool": "read_note", "topic": "broken"},
    ]
    assert calls(http_log) == [{"tool": "read_note", "topic": "work"}]
    (line,) = lines
    assert line.startswith("MCP server missing (/nonexistent/voicegrok-mcp) could not be used")


def test_mcp_servers_are_named_in_the_config_file(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        'voice = "joe-medium"\n'
        "[mcp.notes]\n"
        'command = "python3"\n'
        'args = ["notes.py"]\n'
        'env = { NOTES_LOG = "/tmp/x" }\n'
        "[mcp.web]\n"
        'url = "http://127.0.0.1:8000/mcp"\n'
    )
    config = load_user_config(path)
    assert config.mcp == (
        McpServer("notes", "python3", ("notes.py",), (("NOTES_LOG", "/tmp/x"),)),
        McpServer("web", url="http://127.0.0.1:8000/mcp"),
    )
    save_user_config(config, path)  # the settings screen keeps them
    assert load_user_config(path) == config
    path.write_text('[mcp.bad]\ncommand = "x"\nurl = "http://y"\n')
    with pytest.raises(UsageError, match=r"mcp\.bad needs either command"):
        load_user_config(path)


async def test_the_model_calls_an_mcp_tool_for_a_realtime_client(
    engines: Engines, tmp_path: Path
) -> None:
    """voicegrok serve with the notes server: a client requires a tool call, the model
    (the real default one, under the grammar) calls read_note, and answers from it."""
    log = tmp_path / "calls.jsonl"
    async with mcp_tools([stdio_server(log)]) as tools:
        engines.tools = tools
        try:
            async with (
                serve(engines) as server,
                sdk(server).realtime.connect(model="voicegrok") as conn,
            ):
                await anext(aiter(conn))
                await conn.conversation.item.create(
                    item=ask_item("What does my shopping note say?")
                )
                await conn.response.create(
                    response={"tool_choice": "required", "output_modalities": ["text"]}
                )
                events = await until_done(conn, timeout_s=120)
        finally:
            engines.tools = []
    assert events[-1].response.status == "completed", events[-1]
    (call,) = calls(log)[:1]
    assert call["tool"] == "read_note" and call["topic"]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text.strip() and "<tool_call>" not in text


async def test_the_terminal_ui_s_assistants_get_the_mcp_tools(tmp_path: Path) -> None:
    from voicegrok.config import Settings
    from voicegrok.conversation import Conversation
    from voicegrok.endpointing import EndpointConfig
    from voicegrok.testing import fake_engines
    from voicegrok.ui.backend import LocalBackend

    engines = fake_engines()
    backend = LocalBackend(mcp=(stdio_server(tmp_path / "calls.jsonl"),))
    made = backend.assistant(engines, Settings(), Conversation(), EndpointConfig())
    async with made as assistant:
        assert isinstance(assistant, Assistant)
        assert "read_note" in assistant.tools and "calculate" in assistant.tools
    assert engines.tools == [], "given back when the assistant goes"
