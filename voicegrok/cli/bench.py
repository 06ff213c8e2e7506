"""``voicegrok bench``: runs one of the benches of :mod:`voicegrok.bench`, prints its JSON."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import signal
import sys
from pathlib import Path
from typing import Any

from ..config import Settings

__all__ = ["cmd_bench"]


async def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from ..bench import (
        run_latency_bench,
        run_reply_bench,
        run_server_bench,
        run_soak_bench,
        run_ui_bench,
    )

    if args.kind == "turns":  # no LLM in it
        from ..bench.turns import run_turns_bench

        report = await asyncio.to_thread(
            run_turns_bench,
            set_path=args.set,
            turn_model=None if settings.turn_model == "none" else settings.turn_model,
            stt_model=settings.stt_model,
            progress=not args.quiet,
        )
        return _print(report, args.out)
    if settings.llm_model is None and not settings.llm_url:
        # the LLM auto picks, by path: the benches' commands run with a home folder of
        # their own, where a joined model and its measured speed are not
        from ..choice import choose_llm

        picked = await asyncio.to_thread(choose_llm, None, settings.threads)
        settings = dataclasses.replace(settings, llm_model=str(picked.path))
    if args.kind == "echo":  # it only waits for voicegrok talk, on virtual devices
        from ..bench.echo import run_echo_bench

        def say(line: str) -> None:
            if not args.quiet:
                print(f"… {line}", file=sys.stderr, flush=True)

        if args.minutes is not None:
            from ..bench.echo_talk import run_echo_conversation

            report = await asyncio.to_thread(
                run_echo_conversation,
                settings,
                minutes=args.minutes,
                gains=tuple(args.gains),
                progress=say,
            )
        else:
            report = await asyncio.to_thread(
                run_echo_bench, settings, runs=args.runs, gains=tuple(args.gains), progress=say
            )
        return _print(report, args.out)
    if args.kind in ("ui", "soak"):
        # it only waits for other processes: run here, with Ctrl+C interrupting it at once
        # (the event loop's handler would wait for it to end), its cleanup then done
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            if args.kind == "ui":
                report = run_ui_bench(
                    settings, runs=args.runs, modes=args.modes, progress=not args.quiet
                )
            else:
                report = run_soak_bench(
                    settings, minutes=args.minutes or 60.0, progress=not args.quiet
                )
        finally:
            signal.signal(signal.SIGINT, previous)
    elif args.kind == "quality":
        from ..bench.quality import run_quality_bench

        report = await run_quality_bench(settings, progress=not args.quiet)
    elif args.kind == "speculative":
        from ..bench.speculative import run_speculative_bench

        report = await asyncio.to_thread(
            run_speculative_bench, settings, draft=settings.draft, progress=not args.quiet
        )
    elif args.kind == "tools":
        from ..bench.tools import run_tool_bench

        report = await run_tool_bench(
            settings, modes=tuple(args.modes_of_tools), progress=not args.quiet
        )
    elif args.kind == "server":
        report = await run_server_bench(
            settings, sessions=tuple(args.sessions), runs=args.runs, progress=not args.quiet
        )
    else:
        bench = run_latency_bench if args.kind == "latency" else run_reply_bench
        report = await bench(settings, runs=args.runs, progress=not args.quiet)
    return _print(report, args.out)


def _print(report: dict[str, Any], out: Path | None) -> int:
    text = json.dumps(report, indent=2)
    if out:
        out.write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0
