"""What this machine has: ``devices`` (sound devices) and ``models`` (the catalog)."""

from __future__ import annotations

import argparse
import json

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
    rows = [models.describe(e) for e in models.catalog()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<22} {'kind':<4} {'size':>9}  {'present':<8} where")
    for r in rows:
        size = r["size_bytes"]
        size_txt = f"{int(size) / 1e6:.0f} MB" if isinstance(size, int) else "-"
        name = f"{r['name']}{' *' if r['default'] else ''}"
        present = "yes" if r["present"] else "no"
        where = r["path"] if r["present"] else f"{r['origin']}: {r['install']}"
        print(f"{name:<22} {r['kind']:<4} {size_txt:>9}  {present:<8} {where}")
    print(f"\n* default   catalog folder: {models.models_dir()}")
    return 0
