"""What several commands share: loading the models with progress lines, checking a text,
the saved settings with this run's flags on top."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from ..assistant import Engines, load_engines
from ..config import Settings
from ..errors import UsageError
from ..userconfig import UserConfig, load_user_config

__all__ = ["MAX_TEXT_CHARS", "check_text", "load", "mcp_connected", "user_config"]

MAX_TEXT_CHARS = 8000
"""Longest text accepted by ``ask`` and ``say``."""


def load(
    settings: Settings, args: argparse.Namespace, *, sessions: int = 1, **kinds: bool
) -> Engines:
    """The engines ``kinds`` asks for (see ``load_engines``), with progress on stderr
    unless ``-q``."""
    progress = None if args.quiet else (lambda m: print(f"… {m}", file=sys.stderr, flush=True))
    return load_engines(settings, progress=progress, sessions=sessions, **kinds)


@contextlib.asynccontextmanager
async def mcp_connected(config: UserConfig, engines: Engines) -> AsyncIterator[None]:
    """While inside: the tools of the config's MCP servers are the engines' (a server
    that fails is one line on stderr, and left out)."""
    if not config.mcp:
        yield
        return
    from ..adapters.mcp import mcp_tools

    async with mcp_tools(
        config.mcp, lambda line: print(f"voicegrok: {line}", file=sys.stderr)
    ) as tools:
        engines.tools = tools
        try:
            yield
        finally:
            engines.tools = []


def check_text(text: str, what: str) -> str:
    """``text`` stripped; a usage error if it is empty or too long."""
    text = text.strip()
    if not text:
        raise UsageError(f"{what} is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise UsageError(
            f"{what} is too long: {len(text)} characters, at most {MAX_TEXT_CHARS}; "
            "split it into shorter parts"
        )
    return text


def user_config(args: argparse.Namespace) -> tuple[UserConfig, Path | None]:
    """The saved settings (``--config`` or the default file) with the flags given on top;
    the flags are for this run only (saving the settings screen keeps them out of the
    file). Also returns the ``--config`` path."""
    path: Path | None = args.config
    flags = {
        name: getattr(args, name, None)
        for name in ("input_device", "output_device", "voice", "llm_model", "stt_model")
    }
    return load_user_config(path).with_flags(**flags), path
