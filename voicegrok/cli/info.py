"""What this machine has: ``devices`` (sound devices) and ``models`` (the catalog)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from .. import models
from ..config import Settings

__all__ = ["cmd_devices", "cmd_models"]


async def cmd_devices(args: argparse.Namespace, settings: Settings) -> int:
    from ..adapters.microphone import list_devices

    rows = list_devices()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no sound devices found (voicegrok demo and voicegrok reply work without any)")
        return 0
    print(f"{'#':>3}  {'in':>3} {'out':>3} {'rate':>6}  name")
    for r in rows:
        mark = " (default input)" if r["default_input"] else ""
        mark += " (default output)" if r["default_output"] else ""
        row = f"{r['index']:>3}  {r['inputs']:>3} {r['outputs']:>3} {r['rate_hz']:>6}"
        print(f"{row}  {r['name']}{mark}")
    return 0


async def cmd_models(args: argparse.Namespace, settings: Settings) -> int:
    from .. import choice

    rows = [models.describe(e) for e in models.catalog()]
    progress = None if args.json else (lambda m: print(f"… {m}", file=sys.stderr, flush=True))
    found = await asyncio.to_thread(
        choice.speeds,
        settings.threads,
        fresh=args.bench,
        measure_missing=args.bench,
        progress=progress,
    )
    figures = {e.name: s for e, _, s in found}
    picked = choice.pick(found) if any(s for s in figures.values()) else None
    for r in rows:
        speed = figures.get(str(r["name"]))
        if speed is not None:
            r["first_token_ms"] = round(speed.first_token_ms)
            r["first_clause_ms"] = round(speed.first_clause_ms)
            r["tokens_per_s"] = round(speed.tokens_per_s, 1)
    if args.json:
        auto = {"name": picked.name, "reason": picked.reason} if picked else None
        print(json.dumps({"models": rows, "auto_llm": auto}, indent=2))
        return 0
    print(f"{'name':<22} {'kind':<4} {'size':>9}  {'present':<8} {'quality':>7}  where")
    for r in rows:
        size = r["size_bytes"]
        size_txt = f"{int(size) / 1e6:.0f} MB" if isinstance(size, int) else "-"
        name = f"{r['name']}{' *' if r['default'] else ''}"
        present = "yes" if r["present"] else "no"
        quality = "-" if r["quality"] is None else f"{r['quality']}/100"
        where = r["path"] if r["present"] else f"{r['origin']}: {r['install']}"
        print(f"{name:<22} {r['kind']:<4} {size_txt:>9}  {present:<8} {quality:>7}  {where}")
        if "tokens_per_s" in r:
            print(
                f"{'':<22} here: first token {r['first_token_ms']} ms, first clause "
                f"{r['first_clause_ms']} ms, {r['tokens_per_s']} tokens/s"
            )
    print(f"\n* embedded default   catalog folder: {models.models_dir()}")
    if picked is not None:
        print(f"LLM auto (the default): {picked.name}, {picked.reason}")
    else:
        print(
            "LLM auto (the default): not measured on this machine yet; the first run "
            "measures, or voicegrok models --bench"
        )
    print(
        f"auto takes the best quality with ≥ {choice.MIN_TOKENS_PER_S:.0f} tokens/s and the "
        f"first clause within {choice.MAX_FIRST_CLAUSE_MS:.0f} ms; --llm-model overrides it"
    )
    return 0
