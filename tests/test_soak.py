"""``voicegrok bench soak``: its report from known turns, and a one-minute soak in real
processes (the real UI in tmux, virtual sound devices, the real models)."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from voicegrok.bench.soak import CONVERSATION, Spoken, Typed
from voicegrok.bench.soak_report import Turn, soak_report, tenths
from voicegrok.config import Settings

from .conftest import Run


def test_tenths_are_the_first_and_last_tenth_of_the_values_at_least_one_each() -> None:
    """Twenty values give two at each end; three give one; none give empty summaries."""
    first, last = tenths([float(v) for v in range(1, 21)])
    assert (first["p50"], first["n"], last["p50"], last["n"]) == (1.5, 2, 19.5, 2)
    first, last = tenths([5.0, 1.0, 7.0])
    assert (first["p50"], last["p50"]) == (5.0, 7.0)
    assert tenths([]) == ({}, {})


def test_a_turn_keeps_its_answers_figures_and_fails_on_a_failed_row() -> None:
    """The answer is the last row not interrupted; an interrupted turn's only row says so;
    a row with ``failed`` fails the turn."""
    turn = Turn(n=1, at_s=0.0, kind="spoken", question="turn1.wav")
    turn.take(
        [
            {"interrupted": True, "tokens_per_s": 5.0, "n_tokens": 3},
            {"interrupted": False, "tokens_per_s": 80.0, "n_tokens": 40, "failed": None},
        ],
        heard_ms=500.0,
    )
    assert (turn.tokens_per_s, turn.interrupted, turn.failed, turn.heard_ms) == (
        80.0,
        False,
        None,
        500.0,
    )
    cut = Turn(n=2, at_s=9.0, kind="spoken", question="turn2.wav")
    cut.take([{"interrupted": True, "tokens_per_s": 70.0, "n_tokens": 12}])
    assert cut.interrupted and cut.tokens_per_s == 70.0
    failed = Turn(n=3, at_s=20.0, kind="typed", question="Hi")
    failed.take([{"interrupted": False, "n_tokens": 0, "failed": "llm"}])
    assert failed.failed == "its metrics line says failed (llm)" and failed.tokens_per_s is None


def test_soak_report_measures_growth_after_the_warmup_and_drift_between_tenths() -> None:
    """RSS after the warm-up (the later of a tenth of the run and three turns) against the
    end; heard latency's p50 of the last tenth over the first; each target met or not."""
    turns = [
        Turn(n=i, at_s=10.0 * i, kind="typed" if i % 4 == 0 else "spoken", question="q")
        for i in range(1, 21)
    ]
    for t in turns:
        t.heard_ms = None if t.kind == "typed" else 500.0 + 10 * t.n
        t.tokens_per_s = 80.0
    turns[7].failed = "no answer for 90 s"
    idle = [(10.0 * i + 5, 700.0 + i) for i in range(1, 21)]
    report = soak_report(
        Settings(),
        minutes=3.5,
        ran_s=210.0,
        turns=turns,
        idle_rss=idle,
        rss_samples=[(5.0 * i, 700.0) for i in range(40)],
        new_conversations=1,
        stopped=None,
    )
    assert report["warmup_s"] == 40.0  # the 4th turn started at 40 s, after 21 s (a tenth)
    assert (report["rss_mb_after_warmup"], report["rss_mb_end"]) == (704.0, 720.0)
    assert report["rss_growth"] == round(720 / 704, 3)
    assert (report["turns"], report["spoken"], report["typed"], report["failed"]) == (20, 15, 5, 1)
    assert report["failures"] == [
        {"turn": 8, "at_s": 80.0, "question": "q", "reason": "no answer for 90 s"}
    ]
    latency = report["heard_latency_ms"]
    assert (latency["first_tenth_p50"], latency["last_tenth_p50"]) == (515.0, 685.0)
    assert latency["drift"] == round(685 / 515, 3) and latency["all"]["n"] == 15
    assert report["targets"] == {
        "failed": {"target": "== 0", "value": 1, "met": False},
        "rss_growth": {"target": "<= 1.05", "value": report["rss_growth"], "met": True},
        "heard_latency_drift": {"target": "<= 1.1", "value": latency["drift"], "met": False},
    }
    assert len(report["rss_curve"]) == 40 and len(report["each"]) == 20


def test_the_first_steps_of_a_conversation_are_every_kind_of_turn() -> None:
    """A short soak meets spoken questions, an interruption and a typed question."""
    first = CONVERSATION[:2]
    assert any(isinstance(s, Spoken) and s.over is not None for s in first)
    assert any(isinstance(s, Typed) for s in first)


needs_rig = pytest.mark.skipif(
    shutil.which("tmux") is None or shutil.which("pulseaudio") is None,
    reason="needs tmux and pulseaudio (installed by .ci/run)",
)


@needs_rig
@pytest.mark.models
def test_a_one_minute_soak_answers_every_kind_of_turn(cli: Any, tmp_path: Any) -> None:
    """A minute of conversation with the real UI: spoken, typed and interrupted turns, none
    failed; the UI's memory and the heard latency measured."""
    out = tmp_path / "soak.json"
    args = ("bench", "soak", "--minutes", "1", "--max-tokens", "40", "-q", "--out", str(out))
    r: Run = cli(*args, timeout=600)
    assert r.code == 0, r.err
    report = json.loads(out.read_text())
    assert report == json.loads(r.out)
    each = json.dumps(report["each"], indent=1)
    assert report["benchmark"] == "soak" and report["turns"] >= 4, each
    assert report["spoken"] >= 2 and report["typed"] >= 1 and report["interrupted"] >= 1, each
    assert report["failed"] == 0 and report["stopped"] is None, report["failures"]
    assert report["rss_mb_after_warmup"] > 0 and report["rss_mb_end"] > 0
    assert report["rss_growth"] > 0 and report["rss_mb"]["n"] >= 2
    latency = report["heard_latency_ms"]
    assert latency["first_tenth_p50"] > 0 and latency["last_tenth_p50"] > 0, each
    assert 0 < latency["all"]["p50"] < 10_000 and latency["drift"] > 0, each
    assert report["tokens_per_s"]["all"]["p50"] > 0
    assert all(isinstance(t["met"], bool) for t in report["targets"].values())
