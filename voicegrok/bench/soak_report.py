"""The report of ``voicegrok bench soak`` (:mod:`.soak`): its turns, and what they say about
failures, memory growth and latency drift. Pure: no process, no device."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from ..config import Settings
from .stats import percentiles

__all__ = ["TARGETS", "Turn", "soak_report", "tenths"]

TARGETS = {"failed": ("==", 0.0), "rss_growth": ("<=", 1.05), "heard_latency_drift": ("<=", 1.10)}
"""What a soak aims for: no failed turn; resident memory at the end over its value after the
warm-up; heard latency's p50 in the last tenth of the turns over the first tenth's."""
WARMUP_SHARE = 0.1
WARMUP_TURNS = 3
"""The warm-up: the first tenth of the run, or the first three turns if they take longer."""


@dataclass
class Turn:
    """One question of the soak and what came of it."""

    n: int
    at_s: float
    """Seconds into the soak when it was asked."""
    kind: str
    """``spoken`` or ``typed``."""
    question: str
    heard_ms: float | None = None
    """Spoken turns: the last voiced sample of the words -> the first sound of the answer."""
    tokens_per_s: float | None = None
    first_audio_device_ms: float | None = None
    """The UI's own figure: end of speech (its VAD) -> first answer sample to the device."""
    interrupted: bool = False
    failed: str | None = None
    """Why the turn failed (None: it did not)."""

    def take(self, rows: Sequence[dict[str, object]], heard_ms: float | None = None) -> None:
        """Keep the figures of the turn's metrics rows: those of its answer (the last row not
        interrupted, else the last row); a row that says ``failed`` fails the turn."""
        self.heard_ms = heard_ms
        answers = [r for r in rows if not r.get("interrupted")] or list(rows)
        if not answers:
            return
        row = answers[-1]
        self.interrupted = bool(row.get("interrupted"))
        speed, device = row.get("tokens_per_s"), row.get("first_audio_device_ms")
        if isinstance(speed, (int, float)) and row.get("n_tokens"):
            self.tokens_per_s = float(speed)
        if isinstance(device, (int, float)):
            self.first_audio_device_ms = float(device)
        if failed := next((r["failed"] for r in rows if r.get("failed")), None):
            self.failed = f"its metrics line says failed ({failed})"

    def line(self, rss_mb: float | None) -> str:
        """One progress line about the turn."""
        said = [f"turn {self.n} at {self.at_s:.0f} s, {self.kind} {self.question[:40]!r}"]
        if self.failed:
            said.append(f"FAILED: {self.failed}")
        if self.interrupted:
            said.append("interrupted")
        if self.heard_ms is not None:
            said.append(f"heard after {self.heard_ms:g} ms")
        if self.tokens_per_s is not None:
            said.append(f"{self.tokens_per_s:g} tokens/s")
        if rss_mb is not None:
            said.append(f"UI {rss_mb:.0f} MB")
        return ", ".join(said)


def tenths(values: Sequence[float]) -> tuple[dict[str, float], dict[str, float]]:
    """The :func:`percentiles` of the first and of the last tenth of ``values`` (in the
    order they came; at least one value each)."""
    k = math.ceil(len(values) / 10)
    return percentiles(values[:k]), percentiles(values[len(values) - k :])


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _target(key: str, value: float | None) -> dict[str, Any]:
    op, goal = TARGETS[key]
    met = None if value is None else (value == goal if op == "==" else value <= goal)
    return {"target": f"{op} {goal:g}", "value": value, "met": met}


def _drift(values: Sequence[float], digits: int = 1) -> dict[str, Any]:
    first, last = tenths(values)
    return {
        "first_tenth_p50": first.get("p50"),
        "last_tenth_p50": last.get("p50"),
        "drift": _ratio(last.get("p50"), first.get("p50")),
        "all": percentiles(values, digits),
    }


def soak_report(
    settings: Settings,
    *,
    minutes: float,
    ran_s: float,
    turns: Sequence[Turn],
    idle_rss: Sequence[tuple[float, float]],
    rss_samples: Sequence[tuple[float, float]],
    new_conversations: int,
    stopped: str | None,
) -> dict[str, Any]:
    """The soak's JSON. ``idle_rss``: (seconds, MB) of the UI once quiet after each step;
    ``rss_samples``: the same every few seconds; ``stopped``: why the soak ended early."""
    warmup_s = max(WARMUP_SHARE * ran_s, turns[WARMUP_TURNS].at_s if len(turns) > 3 else ran_s)
    after = next((mb for s, mb in idle_rss if s >= warmup_s), None)
    end = idle_rss[-1][1] if idle_rss else None
    growth = _ratio(end, after)
    heard = [t.heard_ms for t in turns if t.heard_ms is not None and not t.failed]
    speeds = [t.tokens_per_s for t in turns if t.tokens_per_s and not t.interrupted]
    failures = [
        {"turn": t.n, "at_s": t.at_s, "question": t.question, "reason": t.failed}
        for t in turns
        if t.failed
    ]
    latency = _drift(heard)
    return {
        "benchmark": "soak",
        "what": "one voicegrok ui in a real terminal (tmux, 140x40) with virtual sound devices, "
        "a scripted conversation at real-time pace: spoken questions and follow-ups, words "
        "spoken over an answer, typed questions, Ctrl+N every ten turns",
        "minutes": minutes,
        "ran_s": round(ran_s, 1),
        "settings": {"threads": settings.threads, "max_tokens": settings.max_tokens},
        "turns": len(turns),
        "spoken": sum(t.kind == "spoken" for t in turns),
        "typed": sum(t.kind == "typed" for t in turns),
        "interrupted": sum(t.interrupted for t in turns),
        "new_conversations": new_conversations,
        "failed": len(failures),
        "failures": failures,
        "stopped": stopped,
        "warmup_s": round(warmup_s, 1),
        "rss_mb_after_warmup": after,
        "rss_mb_end": end,
        "rss_growth": growth,
        "rss_mb": {
            "what": "the UI process's VmRSS: after_warmup and end once the speaker is quiet "
            "after a turn; these figures and rss_curve (seconds, MB) of samples every few "
            "seconds throughout",
            **percentiles([mb for _, mb in rss_samples]),
        },
        "rss_mb_idle_after_warmup": {
            "what": "the same quiet figures after the warm-up, which swing by tens of MB from "
            "one turn to the next: p50 of their first and of their last tenth (the trend "
            "rather than two single readings)",
            **_drift([mb for s, mb in idle_rss if s >= warmup_s]),
        },
        "heard_latency_ms": {
            "what": "last voiced sample of a spoken question written to the microphone -> "
            "first sound of the answer recorded; tenths of the spoken turns, in order",
            **latency,
            "not_heard": sum(t.kind == "spoken" and t.heard_ms is None for t in turns),
        },
        "tokens_per_s": _drift(speeds),
        "targets": {
            "failed": _target("failed", len(failures)),
            "rss_growth": _target("rss_growth", growth),
            "heard_latency_drift": _target("heard_latency_drift", latency["drift"]),
        },
        "each": [{k: v for k, v in asdict(t).items() if v is not None} for t in turns],
        "rss_curve": [list(s) for s in rss_samples[:: math.ceil(len(rss_samples) / 60) or 1]],
    }
