"""``voicegrok bench ui``: does the terminal UI slow the assistant down? Real processes, as a
person would measure it.

- ``text``: typed prompts with no sound device. ``voicegrok ask --no-speak`` and the real
  ``voicegrok ui`` in a 140x40 terminal (tmux) take turns on each prompt; the UI starts a
  new conversation (Ctrl+N) after each answer, so both answer from the same empty history
  and, sampling being seeded, give the same answer. Their LLM speeds are set side by side.
- ``speech``: the same with a speaker (virtual devices, :mod:`.rig`): ``ask`` speaks, and
  so does the UI (whose microphone hears a quiet room).
- ``heard`` (:mod:`.heard`): recorded questions spoken into the microphone; the time from
  the end of the words to the first sound of the answer, ``talk`` against the UI.

Whatever is missing here (tmux, PulseAudio) makes the modes that need it ``skipped``.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import VoicegrokError
from . import rig, terminal
from .commands import NO_DEVICE, MetricsFile, Voicegrok, failure
from .heard import run_heard
from .stats import percentiles, ratios

__all__ = [
    "MODES",
    "PROMPTS",
    "TARGETS",
    "run_ui_bench",
    "type_prompt",
    "typed_report",
    "ui_report",
]

MODES = ("text", "speech", "heard")
PROMPTS = (
    "I'd like to visit New York City for two days with things that are not touristy. "
    "Can you make an itinerary?",
    "Explain step by step how to bake bread at home.",
    "Give me ten tips for learning a new language, one per line.",
)
"""The typed prompts: the one of the issue, and two more with long answers."""
SPEECH_PROMPTS = PROMPTS[:1]
"""Spoken answers take as long as they are to hear: one prompt."""
TARGETS = {
    "text_ui_vs_ask": (">=", 0.95),
    "speech_ui_vs_ask": (">=", 0.95),
    "heard_ui_minus_talk_ms": ("<=", 20.0),
}
"""What the UI aims for: the p50 of its tokens/s over ask's, turn by turn, with and without
speech; its heard latency's p50 over talk's."""
_FIGURES = (
    "tokens_per_s",
    "n_tokens",
    "llm_first_token_ms",
    "first_audio_ms",
    "first_audio_device_ms",
    "audio_s",
    "interrupted",
)
"""What each turn's row keeps of a metrics line."""

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _figures(row: dict[str, object]) -> dict[str, object]:
    return {k: row[k] for k in _FIGURES if row.get(k) is not None}


def type_prompt(term: terminal.Terminal, prompt: str) -> None:
    """Type ``prompt`` into the UI's input, and make sure all of it got there (the screen
    shows it whole, or at least its end: then the keys are pressed once more) before
    Enter sends it."""
    shown = prompt if len(prompt) < 120 else prompt[-60:]  # (a 140-column input line)
    for attempt in range(2):
        term.type_text(prompt)
        try:
            term.wait_for(shown, timeout_s=10)
            break
        except terminal.TerminalError:
            if attempt or not term.alive():
                raise
            term.type("C-u")  # clear the input, then again
    term.type("Enter")


def _ui_turn(term: terminal.Terminal, metrics: MetricsFile, prompt: str) -> dict[str, object]:
    """Type ``prompt`` into the UI and wait for its turn's metrics; then Ctrl+N, and wait
    until the conversation is gone from the screen."""
    n = len(metrics.rows())
    type_prompt(term, prompt)
    row = metrics.wait(n + 1, timeout_s=600, alive=term.alive, what="voicegrok ui")
    term.type("C-n")
    deadline = time.monotonic() + 30
    while prompt[:40] in term.screen():
        if time.monotonic() > deadline:
            raise terminal.TerminalError("Ctrl+N did not start a new conversation", term.screen())
        time.sleep(0.1)
    return row


def run_typed(
    vg: Voicegrok, prompts: Sequence[str], runs: int, *, speak: bool, progress: Progress
) -> list[dict[str, Any]]:
    """Each prompt ``runs`` times to ``ask`` and to one UI, in turns (ask first in odd runs,
    the UI in even ones); the UI is stopped (SIGSTOP) while ``ask`` runs, as if it were not
    there. One row per pair."""
    mode = "speech" if speak else "text"
    ask_metrics = MetricsFile(vg.folder / f"ask-{mode}.jsonl")
    ui_metrics = MetricsFile(vg.folder / f"ui-{mode}.jsonl")
    quiet = [] if speak else ["--input-device", NO_DEVICE, "--output-device", NO_DEVICE]
    pairs: list[dict[str, Any]] = []
    with vg.ui(ui_metrics, *quiet) as term:
        progress(f"{mode}: the UI is ready")
        for run in range(1, runs + 1):
            for i, prompt in enumerate(prompts, start=1):
                pair: dict[str, Any] = {"run": run, "prompt": i}
                for who in ("ask", "ui") if run % 2 else ("ui", "ask"):
                    if who == "ui":
                        pair["ui"] = _figures(_ui_turn(term, ui_metrics, prompt))
                        continue
                    term.pause()
                    try:
                        pair["ask"] = _figures(vg.ask(prompt, ask_metrics, speak=speak))
                    finally:
                        term.resume()
                pair["same_answer"] = pair["ask"].get("n_tokens") == pair["ui"].get("n_tokens")
                pairs.append(pair)
                progress(
                    f"{mode}: run {run}/{runs}, prompt {i}/{len(prompts)}: ask "
                    f"{pair['ask'].get('tokens_per_s')} tokens/s, ui "
                    f"{pair['ui'].get('tokens_per_s')} tokens/s"
                )
    return pairs


def _speeds(pairs: Sequence[dict[str, Any]], who: str) -> list[float]:
    return [float(p[who]["tokens_per_s"]) for p in pairs if "tokens_per_s" in p[who]]


def _ui_vs_ask(pairs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    each = [
        (int(p["prompt"]), p["ui"].get("tokens_per_s"), float(p["ask"].get("tokens_per_s") or 0))
        for p in pairs
    ]
    summary = ratios(each)
    by_prompt = summary.pop("per_question_p50")
    return {
        **summary,
        "per_prompt_p50": by_prompt,
        "each": [round(ui / ask, 3) if ui is not None and ask else None for _, ui, ask in each],
    }


def typed_report(
    mode: str, prompts: Sequence[str], runs: int, pairs: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """One typed mode's part of the JSON, from :func:`run_typed`'s pairs."""
    per_prompt = []
    for i, prompt in enumerate(prompts, start=1):
        mine = [p for p in pairs if p["prompt"] == i]
        per_prompt.append(
            {
                "prompt": i,
                "text": prompt,
                "ask_tokens_per_s": percentiles(_speeds(mine, "ask")),
                "ui_tokens_per_s": percentiles(_speeds(mine, "ui")),
                "ui_vs_ask": {k: v for k, v in _ui_vs_ask(mine).items() if k != "per_prompt_p50"},
                "n_tokens": {w: [p[w].get("n_tokens") for p in mine] for w in ("ask", "ui")},
                "same_answer": all(p["same_answer"] for p in mine),
            }
        )
    speech = mode == "speech"
    return {
        "what": (
            "voicegrok ask (spoken to the speaker) and voicegrok ui (speaker and a quiet "
            "microphone) on each typed prompt in turns; each UI answer from an empty history"
            if speech
            else "voicegrok ask --no-speak and voicegrok ui (no sound device) on each typed "
            "prompt in turns; each UI answer from an empty history (Ctrl+N)"
        ),
        "runs": runs,
        "ask_tokens_per_s": percentiles(_speeds(pairs, "ask")),
        "ui_tokens_per_s": percentiles(_speeds(pairs, "ui")),
        "ui_vs_ask": _ui_vs_ask(pairs),
        "same_answer": bool(pairs) and all(p["same_answer"] for p in pairs),
        "per_prompt": per_prompt,
        "pairs": list(pairs),
    }


def _target(key: str, part: dict[str, Any], value_key: Sequence[str]) -> dict[str, Any]:
    op, goal = TARGETS[key]
    value: Any = part
    for k in value_key:
        value = value.get(k) if isinstance(value, dict) else None
    met = None if value is None else (value >= goal if op == ">=" else value <= goal)
    return {"target": f"{op} {goal:g}", "p50": value, "met": met}


def ui_report(settings: Settings, runs: int, modes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The bench's JSON: each mode's part (or ``{"skipped": why}``) and the targets."""
    return {
        "benchmark": "ui",
        "what": "the terminal UI against the plain commands, in real processes and a real "
        "terminal (tmux, 140x40)",
        "runs": runs,
        "settings": {"threads": settings.threads, "max_tokens": settings.max_tokens},
        **modes,
        "targets": {
            "text_ui_vs_ask": _target(
                "text_ui_vs_ask", modes.get("text", {}), ["ui_vs_ask", "p50"]
            ),
            "speech_ui_vs_ask": _target(
                "speech_ui_vs_ask", modes.get("speech", {}), ["ui_vs_ask", "p50"]
            ),
            "heard_ui_minus_talk_ms": _target(
                "heard_ui_minus_talk_ms", modes.get("heard", {}), ["ui_minus_talk_p50_ms"]
            ),
        },
    }


def _run_mode(
    mode: str, vg: Voicegrok, runs: int, audio: rig.VirtualAudio | None, progress: Progress
) -> dict[str, Any]:
    if mode == "text":
        text = vg.with_env(vg.env, vg.folder / "text")
        pairs = run_typed(text, PROMPTS, runs, speak=False, progress=progress)
        return typed_report(mode, PROMPTS, runs, pairs)
    assert audio is not None
    here = vg.with_env(audio.env, vg.folder / mode)
    if mode == "heard":
        return run_heard(here, audio, runs, progress)
    mic = audio.microphone()  # the UI's microphone hears a quiet room
    try:
        pairs = run_typed(here, SPEECH_PROMPTS, runs, speak=True, progress=progress)
    finally:
        mic.close()
    return typed_report(mode, SPEECH_PROMPTS, runs, pairs)


def run_ui_bench(
    settings: Settings,
    *,
    runs: int = 3,
    modes: Sequence[str] = MODES,
    progress: bool = True,
    python: str = sys.executable,
) -> dict[str, Any]:
    """The modes asked for, in order, each ``runs`` times; the report (:func:`ui_report`).
    A mode that cannot run here is ``{"skipped": why}``; any other failure is a
    :class:`VoicegrokError` of one line, after every process started has been ended."""

    def say(message: str) -> None:
        if progress:
            print(f"… {message}", file=sys.stderr, flush=True)

    parts: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="voicegrok-bench-ui-") as tmp:
        vg = Voicegrok(python, settings, dict(os.environ), Path(tmp))
        for mode in (m for m in MODES if m in modes):
            needs = [terminal.missing()] + ([rig.missing()] if mode != "text" else [])
            if reasons := [r for r in needs if r]:
                parts[mode] = {"skipped": "; ".join(reasons)}
                say(f"{mode}: skipped ({parts[mode]['skipped']})")
                continue
            try:
                if mode == "text":
                    parts[mode] = _run_mode(mode, vg, runs, None, say)
                else:
                    with rig.virtual_audio(Path(tmp) / f"pulse-{mode}") as audio:
                        parts[mode] = _run_mode(mode, vg, runs, audio, say)
            except Exception as e:  # one line for the person; the traceback with -v
                log.info("bench ui, %s failed", mode, exc_info=True)
                raise VoicegrokError(f"bench ui, {mode}: {failure(e)}") from e
    return ui_report(settings, runs, parts)
