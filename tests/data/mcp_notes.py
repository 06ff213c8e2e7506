"""A small MCP server for the tests: the person's notes. Run over stdio (no argument) or
streamable HTTP (``http PORT``); each call is appended to $NOTES_LOG."""

from __future__ import annotations

import json
import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("notes")


@server.tool()
def read_note(topic: str) -> str:
    """Read the person's note about a topic (shopping, work, travel)."""
    log = os.environ.get("NOTES_LOG")
    if log:
        with open(log, "a") as f:
            f.write(json.dumps({"tool": "read_note", "topic": topic}) + "\n")
    if topic.lower().strip() == "broken":
        raise ValueError("this note cannot be read")
    return f"The note about {topic} says: buy oat milk and call Ana at 5."


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "http":
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run()
