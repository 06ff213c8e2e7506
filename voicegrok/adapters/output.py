"""Where the audio of a one-off answer goes (``ask``, ``reply``, ``say``, ``demo``): a WAV
file, else the speaker, else nowhere."""

from __future__ import annotations

from pathlib import Path

from ..frames import Frame, Interrupt, TTSAudio
from .speaker import Speaker, default_output_device
from .wav import WavSink

__all__ = ["AudioOut"]


class AudioOut:
    """A WAV file when one is given, else the speaker when asked for and present; with
    neither, ``note`` says why nothing is heard."""

    def __init__(self, wav: Path | None, speak: bool, rate_hz: int) -> None:
        """``wav``: the file to write (wins over the speaker); ``speak``: play the answer
        when no file is given; ``rate_hz``: the rate of the speech (Hertz)."""
        self.wav = wav
        self.sink = WavSink()
        """The audio collected for ``wav``."""
        self.speaker: Speaker | None = None
        self.note: str | None = None
        if wav is None and speak:
            if default_output_device() is None:
                self.note = "no audio output device: the answer is not spoken (use --out FILE.wav)"
            else:
                self.speaker = Speaker(rate_hz)

    def feed(self, frame: Frame) -> None:
        """Take a frame of the answer (only its audio and interruptions matter)."""
        if self.wav is not None:
            self.sink.feed(frame)
        elif self.speaker is not None and isinstance(frame, TTSAudio):
            self.speaker.play(frame.pcm)
        elif self.speaker is not None and isinstance(frame, Interrupt):
            self.speaker.clear()

    async def finish(self) -> str | None:
        """Write the file, or wait until the speaker has played everything. Returns a line
        to show, if any."""
        if self.speaker is not None:
            await self.speaker.drain()
        elif self.wav is not None:
            self.sink.save(self.wav)
            return f"wrote {self.wav} ({self.sink.duration_s:.1f} s of speech)"
        return None

    def close(self) -> None:
        if self.speaker is not None:
            self.speaker.close()
