"""The console face of ``voicegrok talk``: what it prints for each frame."""

from __future__ import annotations

import io

from voicegrok.adapters.console import ConsoleView
from voicegrok.frames import LLMToken, SpeechStarted


def test_speech_heard_over_an_answer_being_written_is_shown_on_a_line_of_its_own() -> None:
    out = io.StringIO()
    view = ConsoleView(out)
    view(SpeechStarted(turn_id=1, audio_start_s=0.0))
    view(LLMToken(turn_id=2, text="Visit New", index=0))
    view(LLMToken(turn_id=2, text=" Orleans", index=1))
    view(SpeechStarted(turn_id=3, audio_start_s=5.0))  # (its own echo, or the person)
    view(LLMToken(turn_id=2, text=" (N).", index=2))
    assert out.getvalue().splitlines() == [
        "(listening…)",
        "voicegrok: Visit New Orleans",
        "(listening…)",
        " (N).",
    ]
