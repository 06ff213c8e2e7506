"""The sound devices of a live conversation, opened together: microphone, speaker and the
echo canceller between them (``voicegrok talk``, ``connect`` and the terminal UI)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..audio import WHISPER_RATE_HZ
from ..errors import VoicegrokError
from .speaker import Speaker, parse_device

if TYPE_CHECKING:
    from .echo import EchoCanceller
    from .microphone import Microphone

__all__ = ["LOUD_SPEAKER_DB", "Devices", "open_devices"]

LOUD_SPEAKER_DB = -3.0
"""From this coupling (the speaker's sound in the microphone against its own, dB) the
person is not heard over the speaker: the echo gate passes only what is 3 dB louder than
the echo could be, and a person is about as loud at the microphone as the speaker's
sound. An answer ready at a pause then waits for the end-of-turn silence, as while the
canceller learns: with the speaker fed back at 0 dB and the answer let out at once,
"I'd like to visit New York City for two days." was answered, the person's next words
went unheard under it, and the last ones became a turn of their own."""


@dataclass
class Devices:
    """What :func:`open_devices` opened; ``close()`` closes all of it."""

    mic: Microphone | None = None
    speaker: Speaker | None = None
    canceller: EchoCanceller | None = None
    chunks: AsyncIterator[npt.NDArray[np.float32]] | None = None
    """The microphone's audio (echo-cancelled when ``canceller`` is set); None: no microphone."""
    sample_rate_hz: int = WHISPER_RATE_HZ
    """Rate of ``chunks`` (Hertz)."""
    problems: list[str] = field(default_factory=list)
    """One line for each device that could not be opened (only when not ``required``)."""
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def echo_figures(self) -> dict[str, object]:
        """The echo canceller's figures since the last call, for a turn's metrics (see
        :meth:`EchoCanceller.take_erle`; None: no echo to remove); nothing without one."""
        if self.canceller is None:
            return {}
        return dict(self.canceller.take_erle())

    def hears_over_speaker(self) -> bool:
        """Whether the microphone now hears the person talking over the speaker: always
        without an echo canceller (a headset), else once it has converged (until then it
        mutes the microphone whenever the speaker plays), and where the speaker is not as
        loud in the microphone as a person (see :data:`LOUD_SPEAKER_DB`)."""
        aec = self.canceller
        if aec is None:
            return True
        loud = not aec.no_echo and 10 * math.log10(aec.coupling) >= LOUD_SPEAKER_DB
        return aec.converged and not loud

    def relearn_echo(self) -> None:
        """See :meth:`EchoCanceller.relearn` (nothing without a canceller)."""
        if self.canceller is not None:
            self.canceller.relearn()

    def close(self) -> None:
        """Close what was opened, the last first; never raises."""
        while self._closers:
            with contextlib.suppress(Exception):
                self._closers.pop()()


def open_devices(
    *,
    listen: bool,
    speaker_rate_hz: int | None,
    input_device: str | None = None,
    output_device: str | None = None,
    echo_cancel: bool = True,
    required: bool = False,
) -> Devices:
    """Open the microphone (when ``listen``), the speaker (at ``speaker_rate_hz``; None: no
    speaker) and, with both open and ``echo_cancel``, the echo canceller between them.

    Devices are named as ``voicegrok devices`` lists them (a name or an index; None: the
    default). Call it on the event loop (the microphone hands its audio to the loop).

    ``required``: a device that cannot be opened raises its error, after closing what was
    open (``talk``). Otherwise the failure becomes a line of ``problems`` and that device is
    left out (the UI then chats in text, or answers silently); an echo canceller that cannot
    start leaves the microphone as it is.
    """
    from .microphone import Microphone

    devices = Devices()

    def opening(what: Callable[[], None]) -> None:
        try:
            what()
        except VoicegrokError as e:
            if required:
                raise
            devices.problems.append(str(e))

    def open_mic() -> None:
        mic = Microphone(parse_device(input_device))
        devices._closers.append(mic.close)
        devices.mic, devices.chunks, devices.sample_rate_hz = mic, mic.chunks(), mic.sample_rate_hz

    def open_speaker() -> None:
        assert speaker_rate_hz is not None
        speaker = Speaker(speaker_rate_hz, parse_device(output_device))
        devices._closers.append(speaker.close)
        devices.speaker = speaker

    def open_canceller() -> None:
        from .echo import EchoCanceller

        assert devices.speaker and devices.mic and devices.chunks is not None
        canceller = EchoCanceller.between(devices.speaker, devices.mic)
        devices._closers.append(canceller.close)
        devices.canceller = canceller
        devices.chunks = canceller.cancel(devices.chunks)
        devices.sample_rate_hz = canceller.sample_rate_hz

    try:
        if listen:
            opening(open_mic)
        if speaker_rate_hz is not None:
            opening(open_speaker)
        if echo_cancel and devices.mic is not None and devices.speaker is not None:
            opening(open_canceller)
    except BaseException:
        devices.close()
        raise
    return devices
