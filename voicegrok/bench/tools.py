"""``voicegrok bench tools``: requests that need a tool and requests that must not call
one (:mod:`.tool_cases`), typed and spoken (synthesized with the voice, then heard by the
speech-to-text model), each scored for the right tool, the right arguments and a right
answer. The clock is fixed, so dates can be checked."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from typing import Any

import numpy as np

from ..assistant import Assistant, Engines, load_engines
from ..audio import pcm16_to_float, resample
from ..config import Settings
from ..frames import LLMToken, ToolUsed, TurnFailed, UserText
from ..tools.timers import Timers
from .tool_cases import CASES, NOW, Case

__all__ = ["run_tool_bench", "score"]


def _close(expected: Any, got: Any) -> bool:
    if isinstance(expected, bool) or isinstance(got, bool):
        return bool(expected == got)
    if isinstance(expected, int | float) and isinstance(got, int | float):
        return bool(abs(expected - got) <= 1e-3 * max(1.0, abs(expected)))
    return str(expected).strip().lower() == str(got).strip().lower()


def score(case: Case, used: list[ToolUsed], answer: str) -> dict[str, bool]:
    """Right tool (none, for a request that needs none), right arguments, right answer."""
    names = [u.name for u in used]
    tool_ok = names == ([case.tool] if case.tool else [])
    arguments: dict[str, Any] = json.loads(used[0].arguments) if used else {}
    args_ok = tool_ok and all(
        k in arguments and _close(v, arguments[k]) for k, v in case.arguments.items()
    )
    said = answer.lower()
    answer_ok = bool(answer.strip()) and all(s.lower() in said for s in case.says)
    return {"tool": tool_ok, "arguments": args_ok, "answer": answer_ok}


async def _turn(
    assistant: Assistant, case: Case, audio: np.ndarray | None, rate: int
) -> tuple[str, list[ToolUsed], str]:
    heard, used, answer = case.request, [], ""
    frames = assistant.ask(case.request) if audio is None else assistant.reply(audio, rate)
    async for frame in frames:
        if isinstance(frame, UserText) and frame.final:
            heard = frame.text
        elif isinstance(frame, ToolUsed):
            used.append(frame)
        elif isinstance(frame, LLMToken):
            answer += frame.text
        elif isinstance(frame, TurnFailed):
            answer = ""
    return heard, used, answer


async def _ask(
    engines: Engines, settings: Settings, case: Case, spoken: dict[str, np.ndarray], rate: int
) -> dict[str, Any]:
    async with Assistant(engines, settings, timers=Timers()) as assistant:
        assistant.tools.context.now = lambda: NOW
        for before in case.setup:
            async for _ in assistant.ask(before):
                pass
        audio = spoken.get(case.request)
        heard, used, answer = await _turn(assistant, case, audio, rate)
    verdict = score(case, used, answer)
    return {
        "request": case.request,
        "heard": heard,
        "expected_tool": case.tool,
        "tools": [{"name": u.name, "arguments": u.arguments} for u in used],
        "said": answer.strip()[:200],
        **verdict,
        "correct": all(verdict.values()),
    }


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def rate(selected: list[dict[str, Any]], key: str) -> float:
        return round(sum(r[key] for r in selected) / len(selected), 3) if selected else 0.0

    need = [r for r in rows if r["expected_tool"]]
    none = [r for r in rows if not r["expected_tool"]]
    kinds = sorted({r["expected_tool"] or "none" for r in rows})
    return {
        "requests": len(rows),
        "correct": rate(rows, "correct"),
        "need_a_tool": {"n": len(need), **{k: rate(need, k) for k in SCORES}},
        "need_none": {
            "n": len(none),
            "no_call": rate(none, "tool"),
            "correct": rate(none, "correct"),
        },
        "by_tool": {
            k: rate([r for r in rows if (r["expected_tool"] or "none") == k], "correct")
            for k in kinds
        },
        "wrong": [
            {key: r[key] for key in ("request", "heard", "tools", "said")}
            for r in rows
            if not r["correct"]
        ],
    }


SCORES = ("tool", "arguments", "answer", "correct")


async def run_tool_bench(
    settings: Settings, *, modes: tuple[str, ...] = ("typed", "spoken"), progress: bool = True
) -> dict[str, Any]:
    """Every case in each mode, a fresh conversation each (timers and all)."""
    say = (lambda m: print(f"… {m}", file=sys.stderr, flush=True)) if progress else None
    t = time.perf_counter()
    engines = load_engines(settings, stt="spoken" in modes, tts="spoken" in modes, progress=say)
    load_s = time.perf_counter() - t
    voice, stt = engines.tts, engines.stt
    answering = replace(engines, tts=None)  # the answers are scored as text
    report: dict[str, Any] = {
        "bench": "tools",
        "llm": str(settings.llm_model or "default"),
        "load_s": round(load_s, 2),
    }
    try:
        for mode in modes:
            spoken: dict[str, np.ndarray] = {}
            rate = 16000
            if mode == "spoken":
                assert voice is not None and stt is not None
                rate = stt.sample_rate_hz
                for case in CASES:
                    pcm = b"".join(voice.synthesize(case.request))
                    audio = pcm16_to_float(pcm)
                    spoken[case.request] = resample(audio, voice.sample_rate_hz, rate)
            t = time.perf_counter()
            rows = []
            for i, case in enumerate(CASES):
                rows.append(await _ask(answering, settings, case, spoken, rate))
                if say is not None and not rows[-1]["correct"]:
                    say(f"{mode} {i + 1}/{len(CASES)} wrong: {rows[-1]['heard']!r}")
            report[mode] = {**_summary(rows), "seconds": round(time.perf_counter() - t, 1)}
    finally:
        engines.close()
    return report
