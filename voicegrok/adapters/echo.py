"""Acoustic echo cancellation: the assistant must not hear (and answer, or be interrupted
by) its own voice coming back from the loudspeaker into the microphone.

WebRTC's echo canceller (AEC3, from the ``livekit`` package's audio processing module)
gets everything the speaker renders (the far end, silence included, so its clock stays
aligned) and removes its echo from the microphone signal (the near end). It finds the
echo delay itself. Speech of the person talking over the assistant survives (attenuated
while both talk), so barge-in still works.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import soxr

from ..errors import AudioDeviceError, first_line
from ..threads import EngineThread

if TYPE_CHECKING:
    from .microphone import Microphone
    from .speaker import Speaker

__all__ = ["EchoCanceller"]

FloatAudio = npt.NDArray[np.float32]
RATE = 16000
FRAME = RATE // 100  # WebRTC processes 10 ms frames
_SOUND = 300
"""Peak (16-bit) above which a far-end frame counts as sound, not silence (-40 dBFS)."""


class EchoCanceller:
    """Call :meth:`far_end` with what the speaker plays (any thread, e.g. the audio
    callback) and pass the microphone through :meth:`cancel` (16 kHz mono out).

    AEC3 converges at once when it gets one far-end frame per microphone frame, the far
    end a little ahead of its echo; fed in the bursts a sound card renders in, it needed
    about 2 s (measured through PulseAudio: its own first words interrupted it). So both
    streams are put on sample clocks (the speaker renders continuously, silence included)
    and each 10 ms microphone frame is paired with the far-end frame played ``delay_ms``
    before it, taken ``lead_ms`` earlier still: AEC3 finds the rest of the delay itself.

    Cold, AEC3 still lets about 200 ms of echo through (measured: enough to interrupt the
    first answer of a session). So until it has heard ``warm_up_ms`` of far-end sound,
    microphone frames near far-end sound are muted (half duplex); from then on the person
    can talk over the assistant at once.
    """

    def __init__(
        self,
        speaker_rate_hz: int,
        mic_rate_hz: int,
        delay_ms: int = 0,
        *,
        lead_ms: int = 100,
        warm_up_ms: int = 1000,
    ) -> None:
        try:
            from livekit import rtc
        except ImportError as e:
            raise AudioDeviceError(
                f"echo cancellation needs the livekit package ({first_line(e)}); "
                "pip install livekit, or use a headset and --no-echo-cancel"
            ) from None
        self._rtc: Any = rtc
        self._apm: Any = rtc.AudioProcessingModule(
            echo_cancellation=True, noise_suppression=True, high_pass_filter=True
        )
        self._apm.set_stream_delay_ms(lead_ms)
        self._delay_s = (delay_ms - lead_ms) / 1000
        self._far: deque[tuple[float, bytes]] = deque()
        self._far_lock = threading.Lock()
        self._far_rate = speaker_rate_hz
        self._far_resampler: Any = (
            soxr.ResampleStream(speaker_rate_hz, RATE, 1, dtype="int16", quality="QQ")
            if speaker_rate_hz != RATE
            else None
        )
        self._far_t0: float | None = None
        """When the far end's first sample was rendered (perf_counter)."""
        self._far_buf = np.zeros(0, dtype=np.int16)
        self._far_base = 0
        """Far-end sample index (16 kHz) of ``_far_buf[0]``."""
        self._mic_resampler: Any = (
            soxr.ResampleStream(mic_rate_hz, RATE, 1, dtype="float32")
            if mic_rate_hz != RATE
            else None
        )
        self._near_t0: float | None = None
        self._near_count = 0
        """Microphone samples (16 kHz) framed so far."""
        self._near_pending = np.zeros(0, dtype=np.int16)
        self._silence = rtc.AudioFrame(bytes(2 * FRAME), RATE, 1, FRAME)
        self._cold_frames = warm_up_ms // 10
        """Far-end frames with sound still to be heard before AEC3 is trusted alone."""
        self._guard = 0
        """Microphone frames still to mute (cold only: echo of far-end sound may follow)."""
        self._guard_frames = (lead_ms + 200) // 10
        self._thread = EngineThread("aec")
        self.sample_rate_hz = RATE

    @classmethod
    def between(cls, speaker: Speaker, mic: Microphone) -> EchoCanceller:
        """A canceller for this speaker and microphone: it hears everything the speaker
        renders; pass the microphone through :meth:`cancel`. The echo delay hint is the
        two devices' latencies."""
        delay_ms = round(1000 * (speaker.latency_s + mic.latency_s))
        canceller = cls(speaker.sample_rate_hz, mic.sample_rate_hz, delay_ms)
        speaker.on_render = canceller.far_end
        return canceller

    def far_end(self, pcm: bytes) -> None:
        """What the speaker just rendered (16-bit mono at the speaker's rate). Never blocks."""
        with self._far_lock:
            self._far.append((time.perf_counter(), pcm))

    def _take_far(self) -> None:
        with self._far_lock:
            blocks = list(self._far)
            self._far.clear()
        if not blocks:
            return
        if self._far_t0 is None:
            first_t, first = blocks[0]
            self._far_t0 = first_t - len(first) / 2 / self._far_rate
        pcm = np.frombuffer(b"".join(b for _, b in blocks), dtype=np.int16)
        if self._far_resampler is not None:
            pcm = self._far_resampler.resample_chunk(pcm)
        self._far_buf = np.concatenate([self._far_buf, pcm])

    def _far_frame(self, near_index: int) -> Any:
        """The far-end frame to pair with the microphone frame starting at ``near_index``."""
        if self._far_t0 is None or self._near_t0 is None:
            return self._silence
        start = near_index + round((self._near_t0 - self._far_t0 - self._delay_s) * RATE)
        # what lies before this frame will never be needed again
        drop = min(len(self._far_buf), max(0, start - self._far_base))
        self._far_buf, self._far_base = self._far_buf[drop:], self._far_base + drop
        i = start - self._far_base
        if i < 0 or i + FRAME > len(self._far_buf):
            return self._silence
        return self._rtc.AudioFrame(self._far_buf[i : i + FRAME].tobytes(), RATE, 1, FRAME)

    def process(self, mic: FloatAudio) -> FloatAudio:
        """Remove the speaker's echo from a microphone chunk just captured (blocking)."""
        if self._near_t0 is None:
            self._near_t0 = time.perf_counter() - len(mic) / RATE
        self._take_far()
        if self._mic_resampler is not None:
            mic = np.asarray(self._mic_resampler.resample_chunk(mic), dtype=np.float32)
        near = (np.clip(mic, -1, 1) * 32767).astype(np.int16)
        audio = np.concatenate([self._near_pending, near])
        n = len(audio) // FRAME
        self._near_pending = audio[n * FRAME :]
        out = []
        for k in range(n):
            far = self._far_frame(self._near_count)
            if self._cold_frames > 0 and far is not self._silence:
                if np.abs(np.frombuffer(bytes(far.data), dtype=np.int16)).max() > _SOUND:
                    self._cold_frames -= 1
                    self._guard = self._guard_frames
            self._apm.process_reverse_stream(far)
            frame = self._rtc.AudioFrame(
                audio[k * FRAME : (k + 1) * FRAME].tobytes(), RATE, 1, FRAME
            )
            self._apm.process_stream(frame)
            if self._guard > 0:
                self._guard -= 1
                out.append(np.zeros(FRAME, dtype=np.int16))
            else:
                out.append(np.frombuffer(bytes(frame.data), dtype=np.int16))
            self._near_count += FRAME
        if not out:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate(out).astype(np.float32) / np.float32(32768)

    async def cancel(self, chunks: AsyncIterator[FloatAudio]) -> AsyncIterator[FloatAudio]:
        """The microphone stream with the speaker's echo removed (16 kHz)."""
        async for chunk in chunks:
            yield await self._thread.call(self.process, chunk)

    def close(self) -> None:
        self._thread.close()
