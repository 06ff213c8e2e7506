"""``voicegrok bench echo``: open speakers, tried from outside.

``voicegrok talk`` runs on the virtual devices with everything the speaker plays mixed back
into the microphone (after the rig's own delay) at each gain asked for: 0 (a headset), 0.25
(-12 dB, a laptop's speaker and microphone), 0.5 (-6 dB). The script, in each run: a
question that gets a long answer, :data:`LISTEN_S` of listening to it, then "Wait, stop.
What is 2 plus 2?" said over it. Reported for each gain:

- turns nobody spoke (its own voice transcribed and answered) and interruptions beyond the
  real one;
- how much of the listening the answer kept playing (pauses for a noise taken for an aside
  are allowed; a turn nobody spoke stops it);
- barge-in as heard: from the first voiced sample of "Wait" written to the microphone to
  the answer falling silent in the recording of the speaker;
- the echo canceller's echo return loss enhancement over the long answer (ERLE: how much
  quieter the speaker's sound is in the cleaned microphone than in the raw one), the
  median of its frames and the worst tenth;
- lines ALSA printed on the terminal ("ALSA lib pcm.c: underrun occurred").
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..demo import demo_dir
from ..errors import VoicegrokError
from .commands import MetricsFile, Voicegrok
from .heard import LEVEL
from .rig import Recording, VirtualAudio, missing, virtual_audio
from .stats import percentiles

__all__ = ["GAINS", "barge_in_heard_ms", "run_echo_bench", "unspoken_turns"]

GAINS = (0.0, 0.25, 0.5)
"""Speaker-to-microphone gains tried: none (a headset), -12 dB, -6 dB."""
LISTEN_S = 20.0
WORDS_OVER = "Wait, stop. What is 2 plus 2?"
QUIET_S = 0.3
"""Silence in the speaker's recording that counts as the answer having stopped."""


def turn_lines(out: str) -> list[str]:
    """The turns ``talk`` printed in ``out`` (words released at a pause and withdrawn when
    the person went on, the first words of their answer shown or not, are part of the
    utterance they belong to, printed again whole)."""
    out = re.sub(r"you: .*\n(?:voicegrok: .*)?\n\(you went on: still listening…\)\n", "", out)
    return [line[5:] for line in out.splitlines() if line.startswith("you: ")]


def after_question(out: str, question_end: str) -> str | None:
    """What ``talk`` printed in ``out`` after the line of the question ending with
    ``question_end`` (words: whisper's punctuation after them varies); None when no line
    has them."""
    lines = out.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("you: ") and question_end in line:
            return "".join(lines[i + 1 :])
    return None


def unspoken_turns(out: str, question_end: str) -> list[str]:
    """What was heard as turns in ``talk``'s output after the question ending
    ``question_end``, other than the words the person said over the answer."""
    rest = after_question(out, question_end)
    said = turn_lines(out if rest is None else rest)
    spoken = next((s for s in said if "stop" in s.lower()), None)
    return [s for s in said if s is not spoken] if spoken else said[1:]


def barge_in_heard_ms(speaker: np.ndarray, rate_hz: int, onset: int) -> float | None:
    """From sample ``onset`` of the speaker's recording (the first voiced sample of the
    words said over the answer, as it played) to the start of the first :data:`QUIET_S`
    of silence after it. None when the speaker was already silent."""
    window = int(QUIET_S * rate_hz)
    loud = np.abs(speaker[onset:]) > LEVEL
    if not loud[:window].any():
        return None
    # the first sample from which a whole window is quiet
    quiet_run = np.convolve(loud.astype(np.int32), np.ones(window, dtype=np.int32), "valid")
    quiet = np.flatnonzero(quiet_run == 0)
    return round(float(quiet[0]) / rate_hz * 1000, 1) if len(quiet) else None


def words_onset(rec: Recording, voiced_at: Sequence[float], said_at: float) -> int:
    """Where, in the speaker's recording, words said from ``said_at`` (``perf_counter``)
    begin: their first block with voice in it as it went into the microphone
    (``voiced_at``: the loopback's record of those)."""
    onset_s = next((t for t in voiced_at if t >= said_at), said_at)
    return int(rec.position_of(onset_s) * rec.RATE)


def leaks_muted_ms(rows: Sequence[Mapping[str, object]]) -> float:
    """How long the echo gate muted echo that AEC3 let through, over ``talk``'s turns."""
    return sum(float(v) for r in rows if isinstance(v := r.get("echo_leaks_muted_ms"), int | float))


def alsa_lines(err: str) -> int:
    """Lines ALSA printed on the terminal."""
    return sum(1 for line in err.splitlines() if line.startswith("ALSA lib"))


def gain_db(gain: float) -> float | None:
    return None if gain == 0 else round(20 * float(np.log10(gain)), 1)


def _one_run(
    vg: Voicegrok, audio: VirtualAudio, gain: float, stop_words: Path, k: int
) -> dict[str, Any]:
    question = demo_dir() / "turn1.wav"
    metrics = MetricsFile(vg.folder / f"echo-{k}.jsonl")
    loop = audio.loopback(gain)  # the room's, from the start: its greeting is heard too
    try:
        with vg.talk(metrics) as alive:
            rec = audio.record()
            audio.speak(0.5, str(question))
            asked_at = rec.now_s()
            audio.speak(LISTEN_S)
            bins = np.arange(asked_at + 3.0, rec.now_s(), 0.5)  # once the answer has begun
            loud = [rec.loudness(t, t + 0.5) > LEVEL for t in bins]
            said_at = time.perf_counter()
            audio.speak(str(stop_words), 8.0)
            metrics.wait(2, timeout_s=120, alive=alive, what="voicegrok talk")
            rec.stop()
    finally:
        loop.terminate()
        loop.wait(10)
    out = (vg.folder / "talk.out").read_text(errors="replace")
    err = (vg.folder / "talk.err").read_text(errors="replace")
    rows = metrics.rows()
    onset = words_onset(rec, loop.voiced_at, said_at)
    long_answer = next((r for r in rows if r.get("interrupted")), rows[0] if rows else {})
    return {
        "gain": gain,
        "unspoken": unspoken_turns(out, "itinerary for me"),
        "interruptions": out.count("(interrupted)"),
        "answer_played": round(sum(loud) / max(1, len(loud)), 2),
        "barge_in_heard_ms": barge_in_heard_ms(rec.audio(), rec.RATE, onset),
        "echo_erle_db": long_answer.get("echo_erle_db"),
        "echo_erle_p10_db": long_answer.get("echo_erle_p10_db"),
        "echo_leaks_muted_ms": leaks_muted_ms(rows),
        "answered": len(rows) >= 2 and not rows[-1].get("interrupted"),
        "alsa_lines": alsa_lines(err),
    }


def echo_report(
    gains: Sequence[float], runs: int, done: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    by_gain: dict[str, Any] = {}
    for gain in gains:
        mine = [r for r in done if r["gain"] == gain]
        erle = [float(r["echo_erle_db"]) for r in mine if r["echo_erle_db"] is not None]
        worst = [float(r["echo_erle_p10_db"]) for r in mine if r["echo_erle_p10_db"] is not None]
        barge = [float(r["barge_in_heard_ms"]) for r in mine if r["barge_in_heard_ms"] is not None]
        by_gain[f"{gain:g}"] = {
            "db": gain_db(gain),
            "runs": len(mine),
            "unspoken_turns": sum(len(r["unspoken"]) for r in mine),
            "unspoken": [text for r in mine for text in r["unspoken"]],
            "extra_interruptions": sum(max(0, r["interruptions"] - 1) for r in mine),
            "answer_played_share": round(float(np.mean([r["answer_played"] for r in mine])), 2)
            if mine
            else None,
            "barge_in_heard_ms": percentiles(barge),
            "real_question_answered": sum(1 for r in mine if r["answered"]),
            "echo_erle_db": percentiles(erle),
            "echo_erle_p10_db": percentiles(worst),
            "echo_leaks_muted_ms": sum(float(r.get("echo_leaks_muted_ms") or 0) for r in mine),
            "alsa_lines": sum(r["alsa_lines"] for r in mine),
        }
    return {
        "what": "voicegrok talk on virtual devices with its speaker mixed back into its "
        f"microphone: a question with a long answer, {LISTEN_S:g} s of listening, then "
        f"{WORDS_OVER!r} said over it",
        "runs": runs,
        "gains": by_gain,
        "turns": list(done),
        "targets": {"unspoken_turns": 0, "barge_in_heard_ms": 150},
    }


def run_echo_bench(
    settings: Settings,
    *,
    runs: int = 3,
    gains: Sequence[float] = GAINS,
    progress: Callable[[str], None] = lambda _line: None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """``runs`` of the script at each gain, the gains in turn within a run."""
    if reason := missing():
        raise VoicegrokError(f"the echo bench needs virtual sound devices: {reason}")
    done: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="voicegrok-bench-echo-") as tmp:
        folder = Path(tmp)
        stop_words = folder / "stop.wav"
        subprocess.run(
            [python, "-m", "voicegrok", "say", WORDS_OVER, "-q", "--out", str(stop_words)],
            check=True,
            capture_output=True,
        )
        for run in range(runs):
            for gain in gains:
                with virtual_audio(folder / f"pulse-{run}-{gain:g}") as audio:
                    vg = Voicegrok(
                        python, settings, dict(audio.env), folder / f"run-{run}-{gain:g}"
                    )
                    vg.folder.mkdir(parents=True, exist_ok=True)
                    done.append(_one_run(vg, audio, gain, stop_words, len(done)))
                progress(f"run {run + 1}/{runs}, gain {gain:g}: {done[-1]}")
    return echo_report(gains, runs, done)
