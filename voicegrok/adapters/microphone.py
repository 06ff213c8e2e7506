"""Sound input through PortAudio (sounddevice): mono float32 chunks handed to the loop."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from ..audio import WHISPER_RATE_HZ
from ..errors import AudioDeviceError
from .device_errors import device_problem
from .speaker import sounddevice_module

__all__ = ["Microphone", "list_devices"]


class Microphone:
    """Records from an input device at 16 kHz (``WHISPER_RATE_HZ``) when it allows, else at
    its own rate.

    ``chunks()`` yields mono float32 arrays of ``block_ms`` each, as they are captured;
    the audio callback only copies and hands over, it never blocks.
    """

    def __init__(self, device: int | str | None = None, *, block_ms: int = 20) -> None:
        sd = sounddevice_module()
        try:
            info = sd.query_devices(device, "input")
        except Exception as e:
            raise AudioDeviceError(device_problem("input", device, e, sd)) from None
        rate = WHISPER_RATE_HZ
        channels = 1
        try:
            sd.check_input_settings(device=device, samplerate=rate, channels=1, dtype="float32")
        except Exception:
            rate = int(info["default_samplerate"])
            channels = max(1, min(2, int(info["max_input_channels"])))
        self.sample_rate_hz = rate
        self.name = str(info["name"])
        self._channels = channels
        self._queue: asyncio.Queue[npt.NDArray[np.float32]] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self.overflows = 0
        self.last_block_s = time.perf_counter()
        """When the last block was captured (``perf_counter``; the start until one is)."""
        self.on_capture: Callable[[float], None] | None = None
        """Called from the audio thread with ``time.perf_counter()`` for each block as it
        is captured, before it is queued (the echo canceller's clock)."""
        try:
            self._stream: Any = sd.InputStream(
                device=device,
                samplerate=rate,
                channels=channels,
                dtype="float32",
                blocksize=int(rate * block_ms / 1000),
                callback=self._callback,
            )
            self._stream.start()
        except Exception as e:
            raise AudioDeviceError(device_problem("input", self.name, e, sd)) from None

    def _callback(self, indata: Any, _frames: int, _time: Any, status: Any) -> None:
        self.last_block_s = now = time.perf_counter()
        if self.on_capture is not None:
            self.on_capture(now)
        if status and status.input_overflow:
            self.overflows += 1
        mono = indata.mean(axis=1) if self._channels > 1 else indata[:, 0]
        with contextlib.suppress(RuntimeError):  # loop closed while shutting down
            self._loop.call_soon_threadsafe(self._queue.put_nowait, mono.astype(np.float32))

    @property
    def latency_s(self) -> float:
        return float(self._stream.latency)

    def alive(self, stall_s: float) -> bool:
        """The stream runs and has captured a block in the last ``stall_s`` seconds (a
        device unplugged stops the stream; a stalled one stops delivering)."""
        return bool(self._stream.active) and time.perf_counter() - self.last_block_s < stall_s

    async def chunks(self) -> AsyncIterator[npt.NDArray[np.float32]]:
        while True:
            yield await self._queue.get()

    def close(self) -> None:
        # abort, not stop: stop() drains PortAudio's buffers, which can hang on a stalled
        # ALSA/PulseAudio stream; at close nothing queued needs to be played.
        self._stream.abort()
        self._stream.close()


def list_devices() -> list[dict[str, object]]:
    """Every PortAudio device: index, name, channels, default rate, default marks."""
    sd = sounddevice_module()
    default_in, default_out = sd.default.device
    rows = []
    for i, d in enumerate(sd.query_devices()):
        rows.append(
            {
                "index": i,
                "name": d["name"],
                "inputs": d["max_input_channels"],
                "outputs": d["max_output_channels"],
                "rate_hz": int(d["default_samplerate"]),
                "default_input": i == default_in,
                "default_output": i == default_out,
            }
        )
    return rows
