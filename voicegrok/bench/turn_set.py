"""The turn-taking set (``tests/data/turn_taking.toml``), said aloud by several voices.

A turn's text may hold pauses ("I'd like to book | a table for two."). The voice says it
as one sentence with a comma at each "|", so the words before a pause are said the way a
person who goes on says them, not as a finished sentence; the comma's short pause is then
stretched to the turn's ``pause_ms``. Voices: the Piper voice (``piper``, and
``piper:slow``, said 30% slower) and espeak-ng's (``espeak:VOICE``, e.g. ``en-gb+f3``,
when the ``espeak-ng`` program is installed).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import WHISPER_RATE_HZ, FloatAudio, pcm16_to_float, resample

__all__ = ["Clip", "Turn", "TurnSet", "Voices", "default_set_path", "load_set", "render"]

RATE = WHISPER_RATE_HZ
LEAD_S = 0.6
TAIL_S = 2.6
"""Silence after the last word: longer than any end-of-turn wait, so every policy ends."""
_FRAME = RATE // 100  # 10 ms
_SOUND_DB = -55
"""Below this (from the loudest 10 ms), a frame is silence."""


@dataclass(frozen=True)
class Turn:
    kind: str
    """``finished``, ``pause`` or ``hesitation``."""
    text: str
    pause_ms: tuple[int, ...] = ()

    @property
    def spoken(self) -> str:
        """The text as the voice gets it: a comma at each pause."""
        parts = [p.strip() for p in self.text.split("|")]
        out = parts[0]
        for part in parts[1:]:
            out += ("" if out.endswith((",", ".", "...", "?", "!")) else ",") + " " + part
        return out

    @property
    def words(self) -> str:
        return " ".join(p.strip() for p in self.text.split("|"))


@dataclass(frozen=True)
class TurnSet:
    voices: tuple[str, ...]
    per_turn: int
    turns: tuple[Turn, ...]

    def pairs(self) -> list[tuple[Turn, str]]:
        """Each turn with the voices that say it, the voices taking turns."""
        out = []
        for i, turn in enumerate(self.turns):
            for k in range(self.per_turn):
                out.append((turn, self.voices[(i * self.per_turn + k) % len(self.voices)]))
        return out


@dataclass(frozen=True, eq=False)
class Clip:
    name: str
    turn: Turn
    voice: str
    audio: FloatAudio
    """16 kHz: lead silence, the turn, tail silence."""
    speech_end: int
    """The sample after the turn's last voiced one."""
    pauses: tuple[tuple[int, int], ...]
    """Where the pauses inside the turn are (samples)."""


def default_set_path() -> Path:
    """The set in the source checkout this package runs from."""
    return Path(__file__).resolve().parents[2] / "tests" / "data" / "turn_taking.toml"


def load_set(path: Path | None = None) -> TurnSet:
    path = path or default_set_path()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ValueError(f"{path}: cannot read the turn-taking set ({e})") from None
    turns = []
    for t in data["turn"]:
        turn = Turn(kind=t["kind"], text=t["text"], pause_ms=tuple(t.get("pause_ms", ())))
        if turn.text.count("|") != len(turn.pause_ms):
            raise ValueError(f"{path}: {turn.text!r} needs one pause_ms per '|'")
        turns.append(turn)
    return TurnSet(tuple(data["voices"]), int(data.get("per_turn", 1)), tuple(turns))


class Voices:
    """Says texts in the set's voices (16 kHz float audio)."""

    def __init__(self, piper_model: Path) -> None:
        self._piper_model = piper_model
        self._piper: dict[str, Callable[[str], FloatAudio]] = {}

    @staticmethod
    def available(voice: str) -> bool:
        return not voice.startswith("espeak:") or shutil.which("espeak-ng") is not None

    def say(self, text: str, voice: str) -> FloatAudio:
        if voice.startswith("espeak:"):
            return _espeak(text, voice.removeprefix("espeak:"))
        if voice not in self._piper:
            self._piper[voice] = self._load_piper(voice)
        return self._piper[voice](text)

    def _load_piper(self, voice: str) -> Callable[[str], FloatAudio]:
        from ..engines.piper import PiperEngine

        slow = voice == "piper:slow"
        engine = PiperEngine(self._piper_model, length_scale=1.3 if slow else None)

        def say(text: str) -> FloatAudio:
            pcm = b"".join(engine.synthesize(text))
            return resample(pcm16_to_float(pcm), engine.sample_rate_hz, RATE)

        return say


def _espeak(text: str, voice: str) -> FloatAudio:
    import soundfile

    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "160", "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    return resample(np.asarray(audio, dtype=np.float32), int(rate), RATE)


def _frames_db(audio: FloatAudio) -> np.ndarray:
    n = len(audio) // _FRAME
    rms = np.sqrt(np.mean(audio[: n * _FRAME].reshape(n, _FRAME) ** 2, axis=1) + 1e-12)
    db: np.ndarray = 20 * np.log10(rms / (rms.max() + 1e-12))
    return db


def _quiet_runs(db: np.ndarray, below: float, min_frames: int) -> list[tuple[int, int]]:
    quiet = db < below
    runs, start = [], None
    for i, q in enumerate(quiet):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_frames:
                runs.append((start, i))
            start = None
    return runs


def _quietest_part(db: np.ndarray, run: tuple[int, int]) -> tuple[int, int]:
    """The part of a quiet run where the sound has died away (the words' ends kept)."""
    silent = np.flatnonzero(db[run[0] : run[1]] < _SOUND_DB)
    if len(silent) == 0:
        middle = (run[0] + run[1]) // 2
        return middle, middle + 1
    return run[0] + int(silent[0]), run[0] + int(silent[-1]) + 1


def render(turn: Turn, voice: str, voices: Voices, *, seed: int = 0) -> Clip:
    """``turn`` said by ``voice``, its pauses stretched, between lead and tail silence."""
    audio = voices.say(turn.spoken, voice)
    db = _frames_db(audio)
    loud = np.flatnonzero(db > _SOUND_DB)  # the words' soft ends kept: a clipped end sounds cut off
    first, last = int(loud[0]), int(loud[-1]) + 1
    audio = audio[first * _FRAME : last * _FRAME]
    db = db[first:last]
    # each pause: the longest quiet run near where its words end (as a share of the text)
    parts = [part.strip() for part in turn.text.split("|")]
    total = len(turn.words)
    cuts: list[tuple[int, int]] = []
    runs = _quiet_runs(db, -35, 3)
    for k in range(len(turn.pause_ms)):
        expected = len(db) * len(" ".join(parts[: k + 1])) / total
        near = [
            r for r in runs if r not in cuts and abs((r[0] + r[1]) / 2 - expected) < 0.2 * len(db)
        ]
        if near:
            run = _quietest_part(db, max(near, key=lambda r: r[1] - r[0]))
        else:  # no pause made by the voice: cut at the quietest frame near there
            lo = int(expected * 0.9)
            hi = max(int(expected * 1.1), lo + 1)
            quietest = lo + int(np.argmin(db[lo:hi]))
            run = (quietest, quietest + 1)
        cuts.append(run)
    pieces: list[FloatAudio] = [np.zeros(int(LEAD_S * RATE), dtype=np.float32)]
    pauses: list[tuple[int, int]] = []
    pos = len(pieces[0])
    prev = 0
    for (a, b), pause_ms in zip(cuts, turn.pause_ms, strict=True):
        speech = audio[prev * _FRAME : a * _FRAME]
        pieces.append(speech)
        pos += len(speech)
        gap = np.zeros(RATE * pause_ms // 1000, dtype=np.float32)
        pieces.append(gap)
        pauses.append((pos, pos + len(gap)))
        pos += len(gap)
        prev = b
    pieces.append(audio[prev * _FRAME :])
    speech_end = pos + len(pieces[-1])
    pieces.append(np.zeros(int(TAIL_S * RATE), dtype=np.float32))
    out = np.concatenate(pieces)
    out = out / max(1e-6, float(np.abs(out).max())) * 0.5  # every voice at the same level
    noise = np.random.default_rng(seed).normal(0, 10 ** (-70 / 20), len(out))
    name = f"{voice} {turn.words}"
    return Clip(
        name=name,
        turn=turn,
        voice=voice,
        audio=(out + noise).astype(np.float32),
        speech_end=speech_end,
        pauses=tuple(pauses),
    )
