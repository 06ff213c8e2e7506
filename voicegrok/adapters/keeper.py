"""Sound devices that come and go: a live conversation outlives its microphone or speaker.

:class:`DeviceKeeper` opens the devices (:func:`~.devices.open_devices`) and watches them.
A device unplugged stops its stream; a stalled one stops delivering blocks. Either is
noticed within :data:`STALL_S`: one line says so, the devices are closed, and they are
opened again as soon as they are back (the same name, or the default device). Meanwhile
the conversation goes on: typed turns are answered, the microphone's audio simply stops,
and the answers are played into a silent stand-in at real-time pace, so the live loop's
idea of what was heard stays true to the text that was shown.

:class:`SwappableOutput` is the speaker the live loop holds throughout: it keeps the
playback position counting across the devices it forwards to.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable

from ..audio import FloatAudio, float_to_pcm16, pcm16_to_float, resample
from ..errors import VoicegrokError
from ..live import AudioOutput
from .devices import Devices, open_devices
from .probe import forget_devices
from .virtual import VirtualSpeaker

__all__ = ["STALL_S", "DeviceKeeper", "SwappableOutput"]

log = logging.getLogger(__name__)

STALL_S = 2.0  # a device that has not moved a block for this long is lost
WATCH_S = 0.5  # seconds between looks at the devices
RETRY_S = 1.0  # seconds between attempts to open a lost device again


class SwappableOutput:
    """An :class:`~voicegrok.live.AudioOutput` that forwards to a speaker which may be
    replaced; positions (``played_bytes``, ``queued_bytes``) go on counting across
    replacements, at this output's own rate."""

    def __init__(self, sample_rate_hz: int) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._out: AudioOutput = VirtualSpeaker(sample_rate_hz, keep=False)
        self._played0 = self._queued0 = 0
        """Positions when the current output was attached (this output's bytes)."""
        self._out_played0 = self._out_queued0 = 0
        """The current output's own positions then."""

    def _scaled(self, n: int) -> int:
        rate = self._out.sample_rate_hz
        return n if rate == self.sample_rate_hz else round(n * self.sample_rate_hz / rate) // 2 * 2

    def attach(self, out: AudioOutput | None) -> None:
        """Play into ``out`` from now on (None: a silent stand-in at real-time pace);
        what the previous output had not played yet is dropped."""
        self._out.clear()
        self._played0, self._queued0 = self.played_bytes, self.queued_bytes
        self._out = out if out is not None else VirtualSpeaker(self.sample_rate_hz, keep=False)
        self._out_played0, self._out_queued0 = self._out.played_bytes, self._out.queued_bytes

    @property
    def played_bytes(self) -> int:
        return self._played0 + self._scaled(self._out.played_bytes - self._out_played0)

    @property
    def queued_bytes(self) -> int:
        return self._queued0 + self._scaled(self._out.queued_bytes - self._out_queued0)

    @property
    def buffered_s(self) -> float:
        return self._out.buffered_s

    def play(self, pcm: bytes) -> None:
        rate = self._out.sample_rate_hz
        if rate != self.sample_rate_hz:  # a device came back at another rate
            pcm = float_to_pcm16(resample(pcm16_to_float(pcm), self.sample_rate_hz, rate))
        self._out.play(pcm)

    def clear(self) -> None:
        self._out.clear()

    def pause(self) -> None:
        self._out.pause()

    def resume(self) -> None:
        self._out.resume()


class DeviceKeeper:
    """The microphone and speaker of a live conversation, kept open (see the module).

    ``notify`` gets each line to show (a device lost, a device back). Use as an async
    context manager; :meth:`chunks` is the microphone's audio throughout, at
    :attr:`sample_rate_hz`, and :attr:`speaker` the speaker."""

    def __init__(
        self,
        devices: Devices,
        *,
        listen: bool,
        speaker_rate_hz: int | None,
        input_device: str | None,
        output_device: str | None,
        echo_cancel: bool,
        notify: Callable[[str], None],
    ) -> None:
        self.devices: Devices | None = devices
        self._open_again = functools.partial(
            open_devices,
            listen=listen and devices.mic is not None,
            speaker_rate_hz=speaker_rate_hz if devices.speaker is not None else None,
            input_device=input_device,
            output_device=output_device,
            echo_cancel=echo_cancel,
            required=True,
        )
        """Opens the same devices as were opened at first (the ones lost must come back)."""
        self.notify = notify
        self.sample_rate_hz = devices.sample_rate_hz
        self.speaker = SwappableOutput(
            devices.speaker.sample_rate_hz if devices.speaker else speaker_rate_hz or 22050
        )
        self.speaker.attach(devices.speaker)
        self._audio: asyncio.Queue[FloatAudio] = asyncio.Queue(maxsize=500)
        self._tasks: list[asyncio.Task[None]] = []
        self.lost: str | None = None
        """What is missing now ("microphone", "speaker", "microphone and speaker")."""

    async def __aenter__(self) -> DeviceKeeper:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start watching (on the event loop); :meth:`close` stops."""
        devices = self.devices
        self._tasks = [asyncio.create_task(self._watch(), name="device-watch")]
        if devices is not None and devices.chunks is not None:
            self._tasks.append(asyncio.create_task(self._pump(devices), name="device-pump"))

    async def _pump(self, devices: Devices) -> None:
        assert devices.chunks is not None
        async for chunk in devices.chunks:
            if devices.sample_rate_hz != self.sample_rate_hz:
                chunk = resample(chunk, devices.sample_rate_hz, self.sample_rate_hz)
            if self._audio.full():  # nobody listens (muted loop): keep the newest
                self._audio.get_nowait()
            self._audio.put_nowait(chunk)

    async def chunks(self) -> AsyncIterator[FloatAudio]:
        while True:
            yield await self._audio.get()

    def _missing(self, devices: Devices) -> list[str]:
        gone = []
        if devices.mic is not None and not devices.mic.alive(STALL_S):
            gone.append("microphone")
        if devices.speaker is not None and not devices.speaker.alive(STALL_S):
            gone.append("speaker")
        return gone

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_S)
            devices = self.devices
            if devices is None:
                continue
            gone = self._missing(devices)
            if gone:
                await self._lose(devices, " and ".join(gone))
                await self._reopen()

    async def _lose(self, devices: Devices, what: str) -> None:
        self.lost, self.devices = what, None
        for task in self._tasks[1:]:  # the pump; this task (the watch) goes on
            task.cancel()
        del self._tasks[1:]
        self.speaker.attach(None)
        devices.close()
        self.notify(
            f"{what} lost (unplugged, or it stopped delivering sound): waiting for it to come back"
        )

    async def _reopen(self) -> None:
        while True:
            await asyncio.sleep(RETRY_S)
            try:
                await asyncio.to_thread(forget_devices)  # nothing is open: PortAudio may
                devices = self._open_again()
            except VoicegrokError as e:
                log.debug("devices not back yet: %s", e)
                continue
            if not await self._moving(devices):  # opened, but nothing comes through
                devices.close()
                continue
            what, self.lost = self.lost, None
            self.devices = devices
            self.speaker.attach(devices.speaker)
            if devices.chunks is not None:
                self._tasks.append(asyncio.create_task(self._pump(devices), name="device-pump"))
            self.notify(f"{what} back: listening again" if devices.mic else f"{what} back")
            return

    @staticmethod
    async def _moving(devices: Devices) -> bool:
        """Each device opened moves a block within :data:`STALL_S`."""
        opened = time.perf_counter()
        for _ in range(int(STALL_S / 0.05)):
            if all(d.last_block_s > opened for d in (devices.mic, devices.speaker) if d):
                return True
            await asyncio.sleep(0.05)
        return False

    def hears_over_speaker(self) -> bool:
        """Whether the microphone now hears the person over the speaker (see
        :meth:`Devices.hears_over_speaker`)."""
        return self.devices is None or self.devices.hears_over_speaker()

    def relearn_echo(self) -> None:
        """See :meth:`Devices.relearn_echo`."""
        if self.devices is not None:
            self.devices.relearn_echo()

    def echo_figures(self) -> dict[str, object]:
        """The echo canceller's figures for a turn's metrics (see :meth:`Devices.echo_figures`)."""
        return self.devices.echo_figures() if self.devices is not None else {}

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        if self.devices is not None:
            with contextlib.suppress(Exception):
                self.devices.close()
            self.devices = None
