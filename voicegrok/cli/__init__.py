"""The ``voicegrok`` command line.

:mod:`.parser` holds the grammar (each command with only the options it uses); the
commands are grouped by what they do: :mod:`.offline` (``ask``, ``reply``,
``transcribe``, ``say``, ``demo``), :mod:`.live` (``talk``, ``ui``), :mod:`.remote`
(``serve``, ``connect``), :mod:`.info` (``devices``, ``models``) and :mod:`.bench`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from ..errors import VoicegrokError
from .parser import build_parser, settings_from

__all__ = ["build_parser", "main", "settings_from", "ui_by_default"]


def ui_by_default(argv: Sequence[str]) -> list[str]:
    """``voicegrok --resume`` is ``voicegrok ui --resume``: options with no command before
    them are the terminal UI's (help and the version stay the program's)."""
    args = list(argv)
    if args and args[0].startswith("-") and args[0] not in ("-h", "--help", "--version"):
        return ["ui", *args]
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``voicegrok ARGV``; returns the exit code (2: a usage error from argparse)."""
    parser = build_parser()
    args = parser.parse_args(ui_by_default(sys.argv[1:] if argv is None else argv))
    if args.command is None:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            parser.print_help()
            return 0
        args = parser.parse_args(["ui"])
    logging.basicConfig(
        level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = asyncio.run(args.run(args, settings_from(args)))
        return code
    except VoicegrokError as e:
        print(f"voicegrok: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `voicegrok ask ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
