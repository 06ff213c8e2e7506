"""Sound output through PortAudio (sounddevice): gapless playback from a buffer."""

from __future__ import annotations

import asyncio
import ctypes
import logging
import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..audio import StreamResampler
from ..errors import AudioDeviceError, first_line
from .device_errors import device_problem

__all__ = [
    "Speaker",
    "default_output_device",
    "parse_device",
    "quiet_alsa",
    "sounddevice_module",
]

log = logging.getLogger(__name__)
_alsa_handler: object = None


def sounddevice_module() -> ModuleType:
    """Import sounddevice, or raise AudioDeviceError when PortAudio itself is missing. The
    ALSA library's own messages go to the log from then on (:func:`quiet_alsa`)."""
    try:
        import sounddevice
    except OSError as e:  # the PortAudio library is not installed
        raise AudioDeviceError(
            f"PortAudio is not available ({first_line(e)}); install it: "
            "apt-get install libportaudio2 (Debian/Ubuntu), brew install portaudio (macOS)"
        ) from None
    quiet_alsa()
    module: ModuleType = sounddevice
    return module


def parse_device(spec: str | None) -> int | str | None:
    """A device as given by a person: an index ("3"), a name ("USB Headset"), or the
    default (None or "")."""
    if not spec:
        return None
    return int(spec) if spec.isdigit() else spec


def quiet_alsa() -> None:
    """Send the ALSA library's messages ("underrun occurred") to the log instead of stderr,
    where they would land in the middle of the conversation (and of the terminal UI's
    screen). Does nothing where there is no ALSA."""
    global _alsa_handler
    if _alsa_handler is not None:
        return
    try:
        asound = ctypes.cdll.LoadLibrary("libasound.so.2")
    except OSError:
        return
    handler_type = ctypes.CFUNCTYPE(
        None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p
    )

    def handler(file: bytes, line: int, function: bytes, err: int, fmt: bytes) -> None:
        log.debug("ALSA %s:%d %s: %s", file, line, function, fmt)

    _alsa_handler = handler_type(handler)  # kept alive: ALSA holds the pointer
    asound.snd_lib_error_set_handler(_alsa_handler)


def default_output_device() -> str | None:
    """The name of the default output device, or None when there is none."""
    try:
        sd = sounddevice_module()
        info = sd.query_devices(kind="output")
    except (AudioDeviceError, ValueError, Exception):  # PortAudioError is not importable here
        return None
    name = info.get("name") if isinstance(info, dict) else None
    return str(name) if name else None


class Speaker:
    """Plays mono 16-bit PCM on an output device.

    ``play`` appends to a buffer that the device's callback drains, so consecutive chunks
    play without gaps; ``clear`` drops what is not yet played (barge-in); ``pause`` plays
    silence, keeping it, until ``resume``. Audio at a rate the device refuses is resampled
    on the way in.
    """

    def __init__(
        self,
        sample_rate_hz: int,
        device: int | str | None = None,
        on_render: Callable[[bytes], None] | None = None,
    ) -> None:
        """``on_render`` gets every block handed to the device, silence included (called
        from the audio thread; it must not block): the echo canceller's far end."""
        sd = sounddevice_module()
        self.on_render = on_render
        self._lock = threading.Lock()
        self._buf = bytearray()
        self._paused = False
        self.played_bytes = 0
        """Bytes handed to the device so far."""
        self.queued_bytes = 0
        """Bytes given to ``play`` so far (after resampling): a position in the output stream."""
        self._in_rate = sample_rate_hz
        self.last_block_s = time.perf_counter()
        """When the device last asked for a block (``perf_counter``)."""
        rate = sample_rate_hz
        try:
            sd.check_output_settings(device=device, samplerate=rate, channels=1, dtype="int16")
        except Exception:
            try:
                rate = int(sd.query_devices(device, "output")["default_samplerate"])
            except Exception as e:
                raise AudioDeviceError(device_problem("output", device, e, sd)) from None
        self._resampler = StreamResampler(rate, np.int16)
        self.sample_rate_hz = rate
        try:
            self._stream = sd.RawOutputStream(
                samplerate=rate,
                channels=1,
                dtype="int16",
                device=device,
                callback=self._callback,
                latency="low",
            )
            self._stream.start()
        except Exception as e:
            raise AudioDeviceError(device_problem("output", device, e, sd)) from None

    def _callback(self, outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        self.last_block_s = time.perf_counter()
        n = len(outdata)
        with self._lock:
            chunk = b"" if self._paused else bytes(self._buf[:n])
            del self._buf[: len(chunk)]
        outdata[: len(chunk)] = chunk
        if len(chunk) < n:
            outdata[len(chunk) :] = b"\x00" * (n - len(chunk))
        self.played_bytes += len(chunk)
        if self.on_render is not None:
            self.on_render(bytes(outdata))

    def play(self, pcm: bytes) -> None:
        """Queue audio for playback (returns at once)."""
        pcm = self._resampler.pcm16(pcm, self._in_rate)
        with self._lock:
            self._buf += pcm
            self.queued_bytes += len(pcm)

    @property
    def buffered_s(self) -> float:
        with self._lock:
            return len(self._buf) / 2 / self.sample_rate_hz

    def clear(self) -> None:
        """Stop at once: drop whatever has not been played yet (a pause ends with it)."""
        with self._lock:
            self.queued_bytes -= len(self._buf)
            self._buf.clear()
            self._paused = False

    def pause(self) -> None:
        """Play silence from the next block on, keeping what is queued."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    async def drain(self) -> None:
        """Wait until everything queued has been played."""
        # The buffer is drained by PortAudio's thread; polling it every 20 ms is simpler
        # than signalling the loop from inside the audio callback.
        while self.buffered_s > 0:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        await asyncio.sleep(float(self._stream.latency))

    @property
    def latency_s(self) -> float:
        return float(self._stream.latency)

    def alive(self, stall_s: float) -> bool:
        """The stream runs and the device asked for audio in the last ``stall_s`` seconds
        (it asks all the time, silence included, while it plays)."""
        return bool(self._stream.active) and time.perf_counter() - self.last_block_s < stall_s

    def close(self) -> None:
        self.clear()
        # abort, not stop: stop() drains PortAudio's buffers, which can hang on a stalled
        # ALSA/PulseAudio stream; at close nothing queued needs to be played.
        self._stream.abort()
        self._stream.close()
