"""Tools the assistant can call: the built-in ones (clock, timers, calculator, units),
a Realtime client's own functions and the tools of MCP servers.

- :mod:`.base`: what a tool is;
- :mod:`.builtin`: one module per built-in tool (adding a tool is adding a file there);
- :mod:`.router`: plain requests for a built-in tool, recognised without the LLM;
- :mod:`.calls`: tool calls in the model's own format, constrained by a grammar;
- :mod:`.box`: the set of tools one conversation has.
"""

from .base import Outcome, Tool, ToolCall, ToolError
from .box import Toolbox

__all__ = ["Outcome", "Tool", "ToolCall", "ToolError", "Toolbox"]
