"""``voicegrok bench echo --minutes N``: a conversation of N minutes on open speakers.

``voicegrok talk`` runs on the virtual devices with its speaker mixed back into its
microphone, as in :mod:`.echo`, but for a whole conversation at each gain: questions in
several voices, each answer heard to its end (or stopped after :data:`LONGEST_S`), some
answers talked over with a filler ("mm-hmm", which must not stop them) and some stopped
("Wait, stop. What is 2 plus 2?"), and stretches of silence. Everything ``talk`` takes for
a turn is matched with what was said in that step of the script; a turn that matches
nothing is one that nobody spoke (its own voice, heard back), unless it came while the
filler was said or in the 2.5 s after: that is the filler, taken for words
(``filler_stopped``). Reported for each gain: those counts, interruptions beyond the stops
said, how many fillers the answer played on through, barge-in as heard (as in
:mod:`.echo`), and how long the echo gate muted echo that AEC3 let through.
"""

from __future__ import annotations

import difflib
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import soundfile

from .. import models
from ..config import Settings
from ..demo import DEMO_QUESTIONS, demo_dir
from ..errors import VoicegrokError
from ..text import words
from .commands import MetricsFile, Voicegrok
from .echo import (
    WORDS_OVER,
    alsa_lines,
    barge_in_heard_ms,
    gain_db,
    leaks_muted_ms,
    turn_lines,
    words_onset,
)
from .heard import LEVEL
from .rig import VirtualAudio, missing, virtual_audio
from .stats import percentiles
from .turn_set import RATE, Voices

__all__ = ["SCRIPT", "Step", "run_echo_conversation", "said_by_whom"]

LONGEST_S = 45.0
"""An answer still playing after this long is stopped with the stop words."""
QUIET_S = 1.0
"""Speaker silence that ends an answer, once ``talk`` has reported it done..."""
STARVED_S = 6.0
"""... or without that (an answer written slower than it is spoken falls silent between
its clauses: a person waits for it)."""
FILLER = "Mm-hmm."


@dataclass(frozen=True)
class Step:
    """One step of the script: a question (a text and a voice, or a recording of the demo),
    and what is said over its answer and when (seconds after it began playing)."""

    question: str
    voice: str = "espeak:en-us"
    filler_at_s: float | None = None
    stop_at_s: float | None = None
    idle_s: float = 0.0
    """Silence after the step, nobody speaking."""


SCRIPT: tuple[Step, ...] = (
    Step("demo:turn1", filler_at_s=6.0),
    Step("Tell me a long story about a lighthouse keeper and his dog.", stop_at_s=15.0),
    Step("demo:turn2", idle_s=10.0),
    Step("What are some good things to do in Chicago in winter?", "espeak:en-gb+f3",
         filler_at_s=5.0, stop_at_s=12.0),
    Step("Explain how a refrigerator keeps food cold.", "espeak:en-us+m3", idle_s=15.0),
    Step("demo:turn3", filler_at_s=4.0),
)  # fmt: skip


def _text(question: str) -> str:
    """What a step's question says (``demo:turnN``: the demo's recording N)."""
    if question.startswith("demo:turn"):
        return DEMO_QUESTIONS[int(question.removeprefix("demo:turn")) - 1]
    return question


def said_by_whom(heard: str, said: Sequence[str]) -> str | None:
    """Which of ``said`` (the texts spoken in this step) the transcript ``heard`` is, or
    None: nobody said it. Transcripts differ from the text a little ("2" for "two", a word
    missed), so it is the closest text if the two are alike enough."""
    heard_words = " ".join(words(heard))
    best, score = None, 0.0
    for text in said:
        ratio = difflib.SequenceMatcher(None, heard_words, " ".join(words(text))).ratio()
        if ratio > score:
            best, score = text, ratio
    return best if score >= 0.6 else None


class _Run:
    """The script at one gain, for as long as asked."""

    def __init__(
        self, vg: Voicegrok, audio: VirtualAudio, wavs: dict[str, Path], metrics: MetricsFile
    ) -> None:
        self.vg, self.audio, self.wavs, self.metrics = vg, audio, wavs, metrics
        self.out_at = 0
        self.rows_asked = 0
        """Turns ``talk`` had reported when the answer listened to was asked for."""
        self.rec = audio.record()
        self.result: dict[str, Any] = {
            "steps": 0, "questions": 0, "fillers": 0, "stops": 0, "turns": 0,
            "unspoken": [], "unspoken_after": [], "filler_stopped": [], "fillers_played_on": 0,
            "barge_in_heard_ms": [], "unanswered": [], "extra_interruptions": 0,
        }  # fmt: skip

    def _new_output(self) -> str:
        """What ``talk`` printed since the last look (whole lines)."""
        out = (self.vg.folder / "talk.out").read_text(errors="replace")
        cut = out.rfind("\n") + 1
        new, self.out_at = out[self.out_at : cut], max(self.out_at, cut)
        return new

    def _playing(self, window_s: float = 0.1) -> bool:
        """Whether the speaker played anything in the last ``window_s``."""
        now = self.rec.now_s()
        return self.rec.loudness(now - window_s, now) > LEVEL / 10

    def _wait_answer(self, asked_at: float, timeout_s: float = 60) -> float | None:
        """Wait for the answer to the words said at ``asked_at`` (recording seconds) to
        begin; its start, or None."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            now = self.rec.now_s()
            if self.rec.loudness(max(asked_at, now - 0.2), now) > LEVEL:
                return now
            time.sleep(0.05)
        return None

    def _listen(self, until_s: float, started_at: float) -> bool:
        """Listen until the answer has played ``until_s`` since it began (True) or ended
        (False): silent after ``talk`` reported a turn done since it was asked for, or
        silent for :data:`STARVED_S`."""
        rows = self.rows_asked
        quiet_since = time.monotonic()
        while self.rec.now_s() - started_at < until_s:
            quiet = time.monotonic() - quiet_since
            if self._playing():
                quiet_since = time.monotonic()
            elif quiet > STARVED_S or (quiet > QUIET_S and len(self.metrics.rows()) > rows):
                return False
            time.sleep(0.05)
        return True

    def _stop(self, loop_voiced: list[float]) -> None:
        said_at = time.perf_counter()
        self.audio.speak(str(self.wavs["stop"]), 0.2)
        self.rows_asked = len(self.metrics.rows())  # with the answer it stopped
        onset = words_onset(self.rec, loop_voiced, said_at)
        ms = barge_in_heard_ms(self.rec.audio(), self.rec.RATE, onset)
        if ms is not None:
            self.result["barge_in_heard_ms"].append(ms)
        self.result["stops"] += 1

    def _judge(self, said: Sequence[str], *, filler: bool = False) -> int:
        """Match the turns ``talk`` printed since the last look with what was said;
        ``filler``: the turns came while the filler was said or just after it (a turn that
        matches nothing else was made of the filler, whatever whisper made of it). Returns
        how many answers were interrupted meanwhile."""
        r, new = self.result, self._new_output()
        interrupted = new.count("(interrupted)")
        r["extra_interruptions"] += max(0, interrupted - said.count(WORDS_OVER))
        for line in turn_lines(new):
            r["turns"] += 1
            who = said_by_whom(line, said) or (FILLER if filler else None)
            if who is None:
                r["unspoken"].append(line)
                before = new[: new.find(f"you: {line}")].strip().splitlines()[-3:]
                r["unspoken_after"].append(" / ".join(before)[-300:])
            elif who == FILLER:
                r["filler_stopped"].append(line)
        return interrupted

    def _filler(self, said: list[str]) -> None:
        """Say the filler over the answer playing, and see whether it plays on."""
        r = self.result
        self._judge(said)
        r["fillers"] += 1
        self.audio.speak(str(self.wavs["filler"]))
        time.sleep(1.5)
        playing = self._playing(1.0)
        time.sleep(1.0)  # the transcript of a filler taken for a turn comes by now
        if not self._judge([*said, FILLER], filler=True) and playing:
            r["fillers_played_on"] += 1

    def step(self, step: Step, loop_voiced: list[float]) -> None:
        r = self.result
        r["steps"] += 1
        said = [_text(step.question)]
        asked_at = self.rec.now_s()
        self.rows_asked = len(self.metrics.rows())
        self.audio.speak(str(self.wavs[step.question]), 0.1)
        r["questions"] += 1
        started = self._wait_answer(asked_at)
        if started is not None:
            for at, what in sorted(
                (t, w)
                for t, w in ((step.filler_at_s, "filler"), (step.stop_at_s, "stop"))
                if t is not None
            ):
                if not self._listen(at, started) or not self._playing(0.3):
                    break  # the answer ended first
                if what == "filler":
                    self._filler(said)
                else:
                    said.append(WORDS_OVER)
                    self._stop(loop_voiced)
                    started = self._wait_answer(self.rec.now_s() - 0.5) or started
            if self._listen(LONGEST_S, started):  # too long: stopped
                said.append(WORDS_OVER)
                self._stop(loop_voiced)
                self._listen(LONGEST_S, self.rec.now_s())
        else:
            r["unanswered"].append(step.question)
        self.audio.speak(1.0 + step.idle_s)
        self._judge(said)


def _recordings(folder: Path) -> dict[str, Path]:
    voices = Voices(models.resolve("tts"))
    wavs: dict[str, Path] = {}
    texts = {s.question: s.voice for s in SCRIPT if not s.question.startswith("demo:")}
    texts |= {"stop": "piper", "filler": "espeak:en-us+m3"}
    for key, voice in texts.items():
        text = {"stop": WORDS_OVER, "filler": FILLER}.get(key, key)
        if voice.startswith("espeak:") and not Voices.available(voice):
            voice = "piper"
        path = folder / f"say-{len(wavs)}.wav"
        soundfile.write(str(path), voices.say(text, voice), RATE)
        wavs[key] = path
    for s in SCRIPT:
        if s.question.startswith("demo:"):
            wavs[s.question] = demo_dir() / f"{s.question.removeprefix('demo:')}.wav"
    return wavs


def run_echo_conversation(
    settings: Settings,
    *,
    minutes: float = 10.0,
    gains: Sequence[float] = (0.25, 0.5),
    progress: Callable[[str], None] = lambda _line: None,
    python: str = sys.executable,
) -> dict[str, Any]:
    """The script, over and over for ``minutes`` at each gain, one ``talk`` per gain."""
    if reason := missing():
        raise VoicegrokError(f"the echo bench needs virtual sound devices: {reason}")
    by_gain: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="voicegrok-bench-echo-") as tmp:
        folder = Path(tmp)
        wavs = _recordings(folder)
        for gain in gains:
            with virtual_audio(folder / f"pulse-{gain:g}") as audio:
                vg = Voicegrok(python, settings, dict(audio.env), folder / f"talk-{gain:g}")
                vg.folder.mkdir(parents=True, exist_ok=True)
                metrics = MetricsFile(vg.folder / "metrics.jsonl")
                loop = audio.loopback(gain)  # the room's, from the start (the greeting's)
                try:
                    with vg.talk(metrics) as alive:
                        run = _Run(vg, audio, wavs, metrics)
                        began = time.monotonic()
                        try:
                            while time.monotonic() - began < minutes * 60:
                                if not alive():
                                    raise VoicegrokError("voicegrok talk ended during the bench")
                                step = SCRIPT[run.result["steps"] % len(SCRIPT)]
                                run.step(step, loop.voiced_at)
                                progress(
                                    f"gain {gain:g}, {time.monotonic() - began:.0f} s: "
                                    f"{ {k: v for k, v in run.result.items() if v} }"
                                )
                        finally:
                            run.rec.stop()
                        minutes_run = (time.monotonic() - began) / 60
                finally:
                    loop.terminate()
                    loop.wait(10)
                err = (vg.folder / "talk.err").read_text(errors="replace")
                r = run.result
                barge = r.pop("barge_in_heard_ms")
                by_gain[f"{gain:g}"] = {
                    "db": gain_db(gain),
                    "minutes": round(minutes_run, 1),
                    **r,
                    "unspoken_turns": len(r["unspoken"]),
                    "barge_in_heard_ms": percentiles(barge),
                    "echo_leaks_muted_ms": leaks_muted_ms(metrics.rows()),
                    "alsa_lines": alsa_lines(err),
                }
    return {
        "what": "voicegrok talk on virtual devices with its speaker mixed back into its "
        f"microphone, a conversation of {minutes:g} minutes at each gain: questions in "
        "several voices, answers heard to the end, talked over with a filler, or stopped",
        "gains": by_gain,
        "targets": {"unspoken_turns": 0, "barge_in_heard_ms": 150},
    }
