"""``voicegrok bench``: per-stage latency of voice turns; LLM speed bare vs in the pipeline.

- ``latency`` (:mod:`.latency`): the demo questions spoken into the live loop at real-time
  pace (:mod:`.scripted`), then interrupted; the LLM's speed in the loop against the LLM
  alone on the same prompts, in a fresh process (:mod:`.baseline`).
- ``reply`` (:mod:`.reply`): whole recorded utterances handed to the pipeline (no VAD, no
  pacing).
- ``server`` (:mod:`.server`): concurrent websocket sessions on ``voicegrok serve``.
- ``ui`` (:mod:`.ui`, :mod:`.heard`): the terminal UI against ``ask`` and ``talk``, each in
  its own process, the UI in a real terminal (:mod:`.terminal`), with virtual sound devices
  (:mod:`.rig`).
- ``soak`` (:mod:`.soak`, :mod:`.soak_report`): one UI for many minutes of scripted
  conversation, spoken and typed, with interruptions: failed turns, memory growth and
  latency drift.

Each returns its report as a JSON-ready dict; :mod:`.stats` summarizes the figures and
:mod:`.memory` measures memory wherever the platform allows.
"""

from __future__ import annotations

from .latency import run_latency_bench
from .memory import peak_rss_mb, rss_mb
from .reply import run_reply_bench
from .server import run_server_bench
from .soak import run_soak_bench
from .ui import run_ui_bench

__all__ = [
    "peak_rss_mb",
    "rss_mb",
    "run_latency_bench",
    "run_reply_bench",
    "run_server_bench",
    "run_soak_bench",
    "run_ui_bench",
]

_rss_mb = rss_mb
"""The name tests/test_server.py imports."""
