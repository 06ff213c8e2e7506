"""Summaries of measured values: percentiles, and one speed against another turn by turn."""

from __future__ import annotations

import statistics
from collections.abc import Iterable

__all__ = ["percentiles", "ratios"]


def percentiles(values: Iterable[float], digits: int = 1) -> dict[str, float]:
    """``p50`` (the median), ``p90`` (the nearest rank), ``min`` and ``max`` of ``values``,
    rounded to ``digits``, and their number ``n``; ``{}`` when there are none."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def pick(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], digits)

    return {
        "p50": round(statistics.median(ordered), digits),
        "p90": pick(0.9),
        "min": round(ordered[0], digits),
        "max": round(ordered[-1], digits),
        "n": len(ordered),
    }


def ratios(pairs: Iterable[tuple[int, float | None, float]]) -> dict[str, object]:
    """``measured / reference`` of each ``(question, measured, reference)``: the
    :func:`percentiles` of all of them (3 digits) and the median of each question's
    (``per_question_p50``, keyed by the question's number as text). A pair without a
    measured value or with a zero reference is left out."""
    by_question: dict[int, list[float]] = {}
    for question, measured, reference in pairs:
        if measured is not None and reference:
            by_question.setdefault(question, []).append(measured / reference)
    return {
        **percentiles([r for q in by_question.values() for r in q], digits=3),
        "per_question_p50": {
            str(q): round(statistics.median(v), 3) for q, v in sorted(by_question.items())
        },
    }
