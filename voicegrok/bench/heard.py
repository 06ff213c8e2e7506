"""``voicegrok bench ui``, mode ``heard``: how long after the end of a spoken question the
answer is heard, with ``voicegrok talk`` and with the UI.

The demo's short questions (for ``voicegrok bench latency``, then questions said by other
voices: :data:`HEARD_VOICES`) are spoken into the virtual microphone at real-time pace
(after half a second of a quiet room, which goes on meanwhile); the speaker's monitor is
recorded.
The delay runs from the moment the last voiced sample of the question was due at the
microphone to the first sample of the answer in the recording, both on this process's
clock (:meth:`.rig.Recording.time_of`). Each answer is heard to its end (its metrics line)
before the next question. Each run is one fresh ``talk`` and one fresh UI, in turns, asked
the same questions in the same order.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import FloatAudio
from ..config import Settings
from ..demo import demo_dir, demo_recordings
from ..errors import VoicegrokError
from .commands import MetricsFile, Voicegrok
from .rig import MIC_RATE_HZ, Microphone, Recording, VirtualAudio, missing, virtual_audio
from .stats import percentiles

__all__ = [
    "HEARD_QUESTIONS",
    "HEARD_VOICES",
    "LEVEL",
    "first_above",
    "heard_of_talk",
    "heard_questions",
    "heard_report",
    "last_above",
    "run_heard",
    "wait_quiet",
]

HEARD_QUESTIONS = (2, 3)
"""The demo questions asked (``turn2.wav``, ``turn3.wav``: short ones)."""
HEARD_VOICES = (
    ("espeak:en-gb+f3", "What is the capital of France?"),
    ("espeak:en-us+m3", "How far is the moon from the earth?"),
    ("piper:slow", "Tell me a joke about cats."),
)
"""Questions said by other voices after the demo's (``voicegrok bench latency``), so the
figure is not one speaker's: voices of the turn-taking set (:mod:`.turn_set`), questions
with short answers (each answer is heard to its end)."""
LEVEL = 0.01
"""Amplitude (-40 dBFS) above which a sample is sound: voiced in a question, heard in an
answer (the virtual devices add no noise)."""
LEAD_IN_S = 0.5
SETTLE_S = 1.0
"""Quiet after an answer (and after the command is ready) before the next question."""


def first_above(audio: FloatAudio, start: int = 0, level: float = LEVEL) -> int | None:
    """Index of the first sample from ``start`` on louder than ``level`` (None: none)."""
    loud = np.flatnonzero(np.abs(audio[max(0, start) :]) > level)
    return int(loud[0]) + max(0, start) if len(loud) else None


def last_above(audio: FloatAudio, level: float = LEVEL) -> int:
    """Index of the last sample louder than ``level`` (the end of the words)."""
    loud = np.flatnonzero(np.abs(audio) > level)
    return int(loud[-1]) if len(loud) else len(audio) - 1


def _running(vg: Voicegrok, who: str, metrics: MetricsFile) -> Any:
    """``talk`` or the UI, running: yields a function that tells whether it still runs."""
    if who == "talk":
        return vg.talk(metrics)

    @contextlib.contextmanager
    def ui() -> Iterator[Callable[[], bool]]:
        with vg.ui(metrics) as term:
            yield term.alive

    return ui()


def wait_quiet(
    rec: Recording, metrics: MetricsFile, alive: Callable[[], bool], who: str, timeout_s: float
) -> None:
    """Wait until the speaker has been silent for :data:`SETTLE_S` with no new metrics
    line meanwhile (an answer let out at a pause inside the question and then withdrawn
    has a line of its own, before the answer to the whole question)."""
    deadline = time.monotonic() + timeout_s
    rows = len(metrics.rows())
    since = time.monotonic()
    while time.monotonic() - since < SETTLE_S:
        if not alive():
            raise VoicegrokError(f"voicegrok {who} ended while answering")
        if time.monotonic() > deadline:
            raise VoicegrokError(f"voicegrok {who} was still answering after {timeout_s:g} s")
        now = rec.now_s()
        if rec.loudness(now - 0.1, now) > LEVEL / 10 or len(metrics.rows()) != rows:
            rows, since = len(metrics.rows()), time.monotonic()
        time.sleep(0.05)


def _ask_aloud(
    mic: Microphone,
    rec: Recording,
    question: FloatAudio,
    metrics: MetricsFile,
    alive: Callable[[], bool],
    who: str,
) -> dict[str, Any]:
    """Speak ``question``, wait for its answer to be played out; the figures of its last
    metrics line and ``heard_ms`` (None when nothing was heard, or sound was already
    playing when the words ended)."""
    n = len(metrics.rows())
    lead_in = np.zeros(int(LEAD_IN_S * MIC_RATE_HZ), dtype=np.float32)
    end_s = mic.say(np.concatenate([lead_in, question]), len(lead_in) + last_above(question))
    metrics.wait(n + 1, timeout_s=300, alive=alive, what=f"voicegrok {who}")
    wait_quiet(rec, metrics, alive, who, timeout_s=300)
    rows = metrics.rows()[n:]
    sound = first_above(rec.audio(rec.position_of(end_s)))  # from the end of the words on
    sounding = sound == 0
    heard_ms = None if sound is None or sounding else round(sound / rec.RATE * 1000, 1)
    row = rows[-1]
    return {
        "heard_ms": heard_ms,
        **{k: row.get(k) for k in KEPT},
        **_accounted(end_s, heard_ms, row),
        **({"metrics_lines": len(rows)} if len(rows) > 1 else {}),
        **({"sounding_when_the_words_ended": True} if sounding else {}),
    }


STEPS = (
    "stt_ms",
    "llm_first_token_ms",
    "first_clause_ms",
    "tts_first_audio_ms",
    "first_audio_ms",
    "released_ms",
    "first_audio_device_ms",
)
"""The command's own figures of each step, from its end of speech."""
KEPT = (*STEPS, "tokens_per_s", "n_tokens")
"""What is kept of the command's metrics line with each turn."""


ACCOUNTED = ("end_detected_ms", *STEPS, "after_handoff_ms", "heard_ms")


def _accounted(end_s: float, heard_ms: float | None, row: dict[str, Any]) -> dict[str, float]:
    """Where the heard time went that the command's own figures do not show: from the last
    voiced sample to the end of speech as the command found it (the input path and the
    VAD's decision), and from the hand-over of the first answer sample to its sound (the
    output path). Both clocks are the machine's monotonic clock."""
    at, device = row.get("speech_end_at_s"), row.get("first_audio_device_ms")
    if not isinstance(at, (int, float)):
        return {}
    detected_ms = round((at - end_s) * 1000, 1)
    out = {"end_detected_ms": detected_ms}
    if heard_ms is not None and isinstance(device, (int, float)):
        out["after_handoff_ms"] = round(heard_ms - detected_ms - device, 1)
    return out


def heard_questions(
    asked: Sequence[int] = HEARD_QUESTIONS, voiced: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, FloatAudio]]:
    """(label, 16 kHz audio) of each question: the demo recordings ``asked`` (labelled
    ``turn2.wav``...), then each (voice, text) of ``voiced`` said by that voice (labelled
    ``voice: text``; an espeak-ng voice is left out where espeak-ng is not installed)."""
    recordings = demo_recordings(demo_dir())
    questions = [(f"turn{i}.wav", recordings[i - 1][1]) for i in asked if i <= len(recordings)]
    if voiced:
        from .. import models
        from .turn_set import Voices

        voices = Voices(models.resolve("tts"))
        questions += [
            (f"{voice}: {text}", voices.say(text, voice))
            for voice, text in voiced
            if voices.available(voice)
        ]
    return questions


def run_heard(
    vg: Voicegrok,
    audio: VirtualAudio,
    runs: int,
    progress: Callable[[str], None],
    commands: Sequence[str] = ("talk", "ui"),
    questions: Sequence[tuple[str, FloatAudio]] | None = None,
) -> dict[str, Any]:
    """The ``heard`` JSON (:func:`heard_report`): each run starts each of ``commands`` in
    turn (the order reversed every other run) and asks it ``questions`` (None: the demo
    questions :data:`HEARD_QUESTIONS`)."""
    if questions is None:
        questions = heard_questions()
    mic = audio.microphone()
    rec = audio.record()
    turns: list[dict[str, Any]] = []
    try:
        for run in range(1, runs + 1):
            for who in commands if run % 2 else commands[::-1]:
                here = vg.with_env(vg.env, vg.folder / f"{who}-{run}")
                metrics = MetricsFile(here.folder / "metrics.jsonl")
                with _running(here, who, metrics) as alive:
                    time.sleep(SETTLE_S)  # a person does not speak the instant it is ready
                    for q, samples in questions:
                        turn = _ask_aloud(mic, rec, samples, metrics, alive, who)
                        turns.append({"run": run, "who": who, "question": q, **turn})
                        heard = turn["heard_ms"]
                        progress(f"heard: run {run}/{runs}, {who}, question {q}: {heard} ms")
    finally:
        mic.close()
        rec.stop()
    return heard_report([q for q, _ in questions], runs, turns)


def heard_of_talk(
    settings: Settings,
    runs: int,
    progress: Callable[[str], None],
    python: str = sys.executable,
    voiced: Sequence[tuple[str, str]] = HEARD_VOICES,
) -> dict[str, Any]:
    """``voicegrok talk`` in a process of its own on virtual devices (a private PulseAudio
    daemon), asked the demo's heard questions and ``voiced`` ones ``runs`` times:
    :func:`heard_report`, or ``{"skipped": why}`` where PulseAudio is missing."""
    if reason := missing():
        return {"skipped": reason}
    questions = heard_questions(HEARD_QUESTIONS, voiced)
    with (
        tempfile.TemporaryDirectory(prefix="voicegrok-bench-heard-") as tmp,
        virtual_audio(Path(tmp) / "pulse") as audio,
    ):
        vg = Voicegrok(python, settings, dict(audio.env), Path(tmp))
        return run_heard(vg, audio, runs, progress, commands=("talk",), questions=questions)


def heard_report(
    questions: Sequence[str], runs: int, turns: Sequence[dict[str, Any]]
) -> dict[str, Any]:
    """The ``heard`` part of the JSON from each turn (``who``, ``heard_ms``, and the
    command's own ``first_audio_device_ms``...)."""

    def of(who: str, key: str) -> list[float]:
        return [float(t[key]) for t in turns if t["who"] == who and t.get(key) is not None]

    talk, ui = percentiles(of("talk", "heard_ms")), percentiles(of("ui", "heard_ms"))
    where = {
        who: {k: percentiles(of(who, k)) for k in ACCOUNTED}
        for who in ("talk", "ui")
        if any(t["who"] == who for t in turns)
    }
    return {
        "what": "last voiced sample of a spoken question written to the microphone -> first "
        "sound of the answer recorded from the speaker (virtual devices, real-time pace), "
        "voicegrok talk vs voicegrok ui",
        "questions": list(questions),
        "runs": runs,
        "talk_ms": talk,
        "ui_ms": ui,
        "ui_minus_talk_p50_ms": round(ui["p50"] - talk["p50"], 1) if talk and ui else None,
        "not_heard": sum(1 for t in turns if t.get("heard_ms") is None),
        "reported_first_audio_device_ms": {
            "what": "each command's own figure: end of speech (as its VAD found it) -> first "
            "reply sample handed to the device",
            "talk": percentiles(of("talk", "first_audio_device_ms")),
            "ui": percentiles(of("ui", "first_audio_device_ms")),
        },
        "where_the_time_went_ms": {
            "what": "p50/p90 of each step, each from the last voiced sample (end_detected) "
            "or from the end of speech as the command found it (the rest); after_handoff: "
            "first sample handed to the device -> heard",
            **where,
        },
        "turns": list(turns),
    }
