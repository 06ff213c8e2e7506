"""The built-in tools, one module each. A module's ``tools(context)`` returns its tools;
every module of this package is loaded (see :func:`builtin_tools`), so adding a tool is
adding a file."""

from __future__ import annotations

import importlib
import pkgutil

from ..base import Tool, ToolContext

__all__ = ["builtin_tools"]


def builtin_tools(context: ToolContext) -> list[Tool]:
    tools: list[Tool] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        tools += module.tools(context)
    return tools
