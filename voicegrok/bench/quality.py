"""``voicegrok bench quality``: a hundred questions graded automatically (facts, arithmetic,
dates, units, follow-ups in one conversation, :mod:`.qa_cases`) and the itinerary demo,
typed to the assistant as a user gets it (its tools too, unless ``--no-tools``). Reports
what is right per kind, how long the answers are (spoken answers should be short), and
the demo's grades."""

from __future__ import annotations

import statistics
import sys
import time
from typing import Any

from ..assistant import Assistant, Engines, load_engines
from ..config import Settings
from ..frames import LLMToken, TurnFailed
from .qa_cases import DEMO_TURNS, QUESTIONS, grade_demo, is_right

__all__ = ["run_quality_bench"]


async def _conversation(engines: Engines, settings: Settings, turns: tuple[str, ...]) -> list[str]:
    answers = []
    async with Assistant(engines, settings) as assistant:
        for text in turns:
            answer = ""
            async for frame in assistant.ask(text):
                if isinstance(frame, LLMToken):
                    answer += frame.text
                elif isinstance(frame, TurnFailed):
                    answer = ""
            answers.append(answer.strip())
    return answers


async def run_quality_bench(settings: Settings, *, progress: bool = True) -> dict[str, Any]:
    say = (lambda m: print(f"… {m}", file=sys.stderr, flush=True)) if progress else None
    engines = load_engines(settings, stt=False, tts=False, progress=say)
    rows: list[dict[str, Any]] = []
    t = time.perf_counter()
    try:
        for q in QUESTIONS:
            answer = (await _conversation(engines, settings, q.turns))[-1]
            right = is_right(answer, q.accept)
            rows.append({"kind": q.kind, "question": q.turns[-1], "answer": answer, "right": right})
            if say is not None and not right:
                say(f"wrong: {q.turns[-1]!r} -> {answer[:80]!r}")
        demo = await _conversation(engines, settings, DEMO_TURNS)
    finally:
        engines.close()
    kinds = sorted({r["kind"] for r in rows})
    single = [len(r["answer"].split()) for r in rows if r["kind"] != "follow-up"]
    grades = grade_demo(demo)
    return {
        "bench": "quality",
        "llm": settings.llm_model or "default",
        "tools": settings.tools,
        "questions": len(rows),
        "right": sum(r["right"] for r in rows),
        "by_kind": {
            k: f"{sum(r['right'] for r in rows if r['kind'] == k)}/"
            f"{sum(1 for r in rows if r['kind'] == k)}"
            for k in kinds
        },
        "answer_words_median": statistics.median(single) if single else 0,
        "answer_words_p90": sorted(single)[int(0.9 * (len(single) - 1))] if single else 0,
        "demo": {**grades, "answers": demo},
        "wrong": [
            {"question": r["question"], "answer": r["answer"][:200]} for r in rows if not r["right"]
        ],
        "seconds": round(time.perf_counter() - t, 1),
    }
