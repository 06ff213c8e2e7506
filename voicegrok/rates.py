"""Sample rates, in one place with no dependencies (the wire protocol imports them too).

``voicegrok.audio`` re-exports them beside the audio helpers.
"""

from __future__ import annotations

__all__ = ["DEFAULT_OUTPUT_RATE_HZ", "PIPER_RATE_HZ", "REALTIME_RATE_HZ", "WHISPER_RATE_HZ"]

WHISPER_RATE_HZ = 16000
"""Hertz: what whisper (and Silero's VAD beside it) take. The microphone, the echo canceller
and the listener work at this rate when they can, so speech is not resampled on its way in."""
REALTIME_RATE_HZ = 24000
"""Hertz: the OpenAI Realtime API's default ``audio/pcm`` rate (its service takes no other)."""
PIPER_RATE_HZ = 22050
"""Hertz: the rate of Piper's medium and high quality voices, the embedded default among them."""
DEFAULT_OUTPUT_RATE_HZ = PIPER_RATE_HZ
"""Hertz: the rate to play or write at when no voice is loaded to give its own."""
