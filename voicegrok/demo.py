"""The itinerary demo's material: four recorded questions of one conversation.

``voicegrok demo`` answers them, and the benches speak them into the live loop. Nothing
here loads a model or opens a device.
"""

from __future__ import annotations

from pathlib import Path

from .audio import FloatAudio, load_audio
from .errors import VoicegrokError

__all__ = ["DEMO_QUESTIONS", "demo_dir", "demo_recordings"]

DEMO_QUESTIONS = [
    "I'd like to visit New York City for two days, and I'd like an itinerary that includes "
    "things that are not typically touristy. Can you make that itinerary for me?",
    "Can you put this itinerary in a table?",
    "Please add a column with the approximate cost of each event.",
    "And now, can you do this for Atlanta, Georgia also?",
]
"""What ``turn1.wav`` ... ``turn4.wav`` of :func:`demo_dir` say, in order."""


def demo_dir() -> Path:
    """The demo's recorded questions: ``assets/demo`` of the checkout (or of the current folder)."""
    for base in (Path(__file__).resolve().parent.parent, Path.cwd()):
        folder = base / "assets" / "demo"
        if any(folder.glob("turn*.wav")):
            return folder
    return Path.cwd() / "assets" / "demo"


def demo_recordings(folder: Path) -> list[tuple[Path, FloatAudio]]:
    """The demo's questions, ``turn1.wav``, ``turn2.wav``... of ``folder``, as 16 kHz audio."""
    files = sorted(folder.glob("turn*.wav"))
    if not files:
        raise VoicegrokError(
            f"no demo recordings (turn1.wav, turn2.wav, ...) in {folder}; "
            "run from the voicegrok checkout or pass --questions DIR"
        )
    return [(f, load_audio(f)) for f in files]
