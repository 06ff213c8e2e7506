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
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..audio import WHISPER_RATE_HZ, FloatAudio, StreamResampler, float_to_int16, int16_to_float
from ..errors import AudioDeviceError, first_line
from ..threads import EngineThread
from .echo_path import ACTIVE_POW, REACH_FRAMES, EchoPath
from .sample_clock import SampleClock

if TYPE_CHECKING:
    from .microphone import Microphone
    from .speaker import Speaker

__all__ = ["EchoCanceller"]

RATE = WHISPER_RATE_HZ  # the listener's rate: the cleaned microphone goes straight on
FRAME = RATE // 100  # WebRTC processes 10 ms frames
_SOUND = 300
"""Peak (16-bit) above which a far-end frame counts as sound, not silence (-40 dBFS)."""
_WAIT_S = 0.25
"""Longest wait for the far-end frame a microphone frame is paired with."""
_GAP_S = 0.05
"""A speaker callback this late against the far end's sample clock lost time (the process
was starved: the device played silence we never rendered)."""
_IDLE_S = 0.3
"""The speaker is idle once it has rendered no sound for this long and has nothing queued:
a microphone frame then need not wait for its far end, which will be silence."""
_CONVERGED_DB = 20.0
"""ERLE (microphone in over out, the speaker playing) from which AEC3 counts as converged."""
_ECHO_POW = 32.0**2
"""Microphone power (16-bit, -60 dBFS) above which a frame where the speaker plays holds
echo to measure (ERLE, echo muted), not just the microphone's own noise: at -70 dBFS on the
rig, noise alone counted (the ERLE's median fell from 54-59 dB to 45-52, and the echo
muted doubled)."""
_CONVERGED_FRAMES = 25
"""Frames with the speaker playing over which convergence is judged (a quarter second)."""
_ERLE_CAP_DB = 60.0
"""A frame's ERLE counts as at most this (AEC3 may leave digital silence)."""
_TALK_DB = 3.0
"""A microphone frame this much louder than the loudest echo it could hold has the person."""
_TALK_HOLD_FRAMES = 80
"""Frames (800 ms) the microphone stays open after the person was last heard over the
speaker: the quieter sounds between a word's loud ones, and the short pauses between
words. With 300 ms, the "s" of "Wait, stop" over an answer at -6 dB was muted and the
pause after "Wait" split the utterance ("8. Stop.", "up what is Q plus 2")."""
_ONSET_FRAMES = 8
"""Frames (80 ms) from the moment the person is first heard over the speaker in which AEC3's
output may give way to the microphone's own frame (see :meth:`EchoCanceller._voice_first`)."""
_VOICE_DB = 10.0
"""A microphone frame this much louder than the loudest echo it could hold is the person's
voice, the echo under it at least this far down."""


def _power(frame: npt.NDArray[np.int16]) -> float:
    """Mean power of a 16-bit frame."""
    return float(np.mean(frame.astype(np.float32) ** 2))


class EchoCanceller:
    """Call :meth:`far_end` with what the speaker plays (any thread, e.g. the audio
    callback) and pass the microphone through :meth:`cancel` (16 kHz mono out).

    AEC3 converges at once when it gets one far-end frame per microphone frame, the far
    end a little ahead of its echo; fed in the bursts a sound card renders in, it needed
    seconds (through PulseAudio, its own first words interrupted it). So both streams are
    put on sample clocks (the speaker renders continuously, silence included) and each
    10 ms microphone frame is paired with the far-end frame played ``delay_ms``
    before it, taken ``lead_ms`` earlier still: AEC3 finds the rest of the delay itself.

    Pairing each frame with far-end sound rendered up to ``lead_ms`` after it makes it wait
    for that sound (about 50 ms through PulseAudio); paired with sound rendered before it,
    answers were heard 50-70 ms sooner, but under a CPU hog the assistant interrupted
    itself (the open-speaker test failed 3 runs of 9, against none of 4).

    The far end is re-anchored when the speaker falls behind by more than 50 ms (with a CPU
    hog, a starved process missed seconds of speaker callbacks, and its far end then ran as
    far behind the echo, beyond what AEC3 can find): it gets the silence the device played
    meanwhile. The microphone's clock (:class:`~.sample_clock.SampleClock`) follows samples
    lost, but not blocks merely held up: moved forward for each late burst, it once made
    every later frame wait that much longer for its far end, and a one-hour soak heard
    answers 125 ms later at its end than at its start.

    With no echo at all (a headset), AEC3 never learns an echo path and keeps suppressing
    the microphone whenever the speaker plays (a person talking over the answer was
    removed, so barge-in failed). So the coupling of speaker to microphone is followed
    (:class:`~.echo_path.EchoPath`; a digitally silent microphone tells nothing): when the
    speaker's sound stays 30 dB below it in the microphone, the microphone is passed as it
    is; when the speaker is heard after all, the canceller is cold again and learns it.

    Cold, AEC3 still lets some echo through, enough to interrupt the first answer of a
    session, or to be transcribed (whisper makes words of echo 10 dB down). So microphone
    frames near far-end sound are muted (half duplex) until AEC3 has converged: it has
    heard at least ``warm_up_ms`` of far-end sound and removes :data:`_CONVERGED_DB` of
    the echo over the last quarter second the speaker played (or the speaker is not heard
    at all); a fixed second of warm-up let echo through on the virtual devices (answered).
    From then on the person can talk over the assistant at once.
    """

    def __init__(
        self,
        speaker_rate_hz: int,
        mic_rate_hz: int,
        delay_ms: int = 0,
        *,
        lead_ms: int = 100,
        warm_up_ms: int = 1000,
        speaker_busy: Callable[[], bool] | None = None,
    ) -> None:
        """``speaker_busy``: whether the speaker has audio queued (from any thread); with it,
        microphone frames skip the wait for their far end while the speaker is idle."""
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
        self._far_resampler = StreamResampler(RATE, np.int16, quality="QQ")
        self._far_clock = SampleClock()
        self._far_t0: float | None = None
        """When the far end's first sample was rendered (perf_counter), by the speaker's
        sample clock: it follows a speaker slower or faster than its nominal rate."""
        self._far_last = 0.0
        """When the latest far-end block was rendered (perf_counter)."""
        self._far_sound_s = -_IDLE_S
        """When the latest far-end block with sound in it was rendered (perf_counter)."""
        self._speaker_busy = speaker_busy
        self._far_rendered = 0
        """Far-end samples (speaker rate) on the far clock so far, gaps filled included."""
        self._far_buf = np.zeros(0, dtype=np.int16)
        self._far_base = 0
        """Far-end sample index (16 kHz) of ``_far_buf[0]``."""
        self._mic_resampler = StreamResampler(RATE, np.float32)
        self._near_clock = SampleClock()
        self._near_t0: float | None = None
        """When the microphone's first sample was captured (perf_counter)."""
        self._mic_rate = mic_rate_hz
        self._captured: deque[float] = deque()
        """When each microphone block not yet processed was captured (perf_counter)."""
        self._mic_in = 0
        """Microphone samples (device rate) processed so far."""
        self._near_count = 0
        """Microphone samples (16 kHz) framed so far."""
        self._near_pending = np.zeros(0, dtype=np.int16)
        self._silence = np.zeros(FRAME, dtype=np.int16)
        self._cold_frames = self._warm_up_frames = warm_up_ms // 10
        """Far-end frames with sound still to be heard before AEC3 may be trusted alone."""
        self.converged = False
        """AEC3 removes the echo (or there is none): the microphone is no longer muted while
        the speaker plays."""
        self._recent: deque[tuple[float, float]] = deque(maxlen=_CONVERGED_FRAMES)
        """(microphone in, out) power of the latest frames with the speaker playing."""
        self._erle_frames: list[float] = []
        """ERLE (dB) of each frame with the speaker playing since :meth:`take_erle` (AEC3
        converged)."""
        self._guard = 0
        """Microphone frames still to mute (cold only: echo of far-end sound may follow)."""
        self._guard_frames = (lead_ms + 200) // 10
        self.path = EchoPath()
        """How loud the speaker is in the microphone, and whether it is heard at all."""
        self._far_reach: deque[float] = deque(maxlen=REACH_FRAMES)
        """Far-end power (smoothed) of the frames whose echo the next microphone frame holds."""
        self._near_fast = 0.0
        """Microphone power, smoothed over a few frames (a word's onset shows in 20 ms)."""
        self._talk_hold = 0
        """Frames the microphone stays open: the person was heard over the speaker."""
        self._onset_left = 0
        """Frames still in which the person's first words may pass as captured."""
        self._leaks_muted = 0
        """Frames since :meth:`take_erle` where AEC3 let echo through and it was muted."""
        self._thread = EngineThread("aec")
        self.sample_rate_hz = RATE

    def captured(self, at_s: float) -> None:
        """The microphone captured a block at ``at_s`` (perf_counter; audio thread)."""
        with self._far_lock:
            self._captured.append(at_s)

    @classmethod
    def between(cls, speaker: Speaker, mic: Microphone) -> EchoCanceller:
        """A canceller for this speaker and microphone: it hears everything the speaker
        renders; pass the microphone through :meth:`cancel`. The echo delay hint is the
        two devices' latencies."""
        delay_ms = round(1000 * (speaker.latency_s + mic.latency_s))
        canceller = cls(
            speaker.sample_rate_hz,
            mic.sample_rate_hz,
            delay_ms,
            speaker_busy=lambda: speaker.buffered_s > 0,
        )
        speaker.on_render = canceller.far_end
        mic.on_capture = canceller.captured
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
        self._far_last = blocks[-1][0]
        parts = []
        for at_s, block in blocks:
            n = len(block) // 2
            if np.abs(np.frombuffer(block, dtype=np.int16)).max(initial=0) > _SOUND:
                self._far_sound_s = at_s
            if self._far_t0 is not None:
                late = at_s - (self._far_t0 + (self._far_rendered + n) / self._far_rate)
                if late > _GAP_S:  # the device played silence while we were not called
                    gap = round(late * self._far_rate)
                    parts.append(bytes(2 * gap))
                    self._far_rendered += gap
            parts.append(block)
            self._far_rendered += n
            self._far_t0 = self._far_clock.update(at_s, self._far_rendered / self._far_rate)
        pcm = self._far_resampler(np.frombuffer(b"".join(parts), dtype=np.int16), self._far_rate)
        self._far_buf = np.concatenate([self._far_buf, pcm])

    def _far_start(self, near_index: int) -> int | None:
        """Far-end index (16 kHz) of the frame to pair with the microphone frame at
        ``near_index``."""
        if self._far_t0 is None or self._near_t0 is None:
            return None
        return near_index + round((self._near_t0 - self._far_t0 - self._delay_s) * RATE)

    def _wait_for_far(self, near_index: int) -> None:
        """A starved process gets its microphone blocks before the speaker's, and AEC3
        then heard no far end at all (seen with a CPU hog): wait for the far frame paired
        with a microphone frame (blocking this thread, at most :data:`_WAIT_S`) rather
        than pair the frame with silence.

        While the speaker is idle (nothing queued, no sound rendered for :data:`_IDLE_S`)
        the far frame will be silence: the frame goes on at once. Most of the time this is
        when a person stops speaking, so the end of their turn is found ~50 ms sooner. An
        answer that starts playing within the lead (~50 ms) of such a frame's capture
        has at most its first 50 ms missing from AEC3's far end; the wait is kept
        whenever the speaker plays."""
        if self._idle():
            return
        deadline = time.perf_counter() + _WAIT_S
        while True:
            start = self._far_start(near_index)
            if start is None or start + FRAME <= self._far_base + len(self._far_buf):
                return
            if time.perf_counter() > deadline or time.perf_counter() - self._far_last > 0.5:
                return  # the speaker is not rendering: nothing to wait for
            time.sleep(0.005)
            self._take_far()

    def _idle(self) -> bool:
        if self._speaker_busy is None or self._speaker_busy():
            return False
        return time.perf_counter() - self._far_sound_s > _IDLE_S

    def _far_frame(self, near_index: int) -> npt.NDArray[np.int16]:
        """The far-end frame to pair with the microphone frame starting at ``near_index``
        (silence when there is none)."""
        start = self._far_start(near_index)
        if start is None:
            return self._silence
        # what lies before this frame will never be needed again
        drop = min(len(self._far_buf), max(0, start - self._far_base))
        self._far_buf, self._far_base = self._far_buf[drop:], self._far_base + drop
        i = start - self._far_base
        if i < 0 or i + FRAME > len(self._far_buf):
            return self._silence
        return self._far_buf[i : i + FRAME]

    def process(self, mic: FloatAudio) -> FloatAudio:
        """Remove the speaker's echo from a microphone chunk just captured (blocking)."""
        with self._far_lock:
            captured = self._captured.popleft() if self._captured else None
        self._mic_in += len(mic)
        if captured is not None or self._near_t0 is None:  # untimed: one stream from here
            at_s = captured if captured is not None else time.perf_counter()
            self._near_t0 = self._near_clock.update(at_s, self._mic_in / self._mic_rate)
        self._take_far()
        near = float_to_int16(self._mic_resampler(mic, self._mic_rate))
        audio = np.concatenate([self._near_pending, near])
        n = len(audio) // FRAME
        self._near_pending = audio[n * FRAME :]
        out = []
        for k in range(n):
            self._wait_for_far(self._near_count)
            far = self._far_frame(self._near_count)
            if not self.converged and np.abs(far).max() > _SOUND:
                self._cold_frames -= 1
                self._guard = self._guard_frames
            self._apm.process_reverse_stream(self._rtc.AudioFrame(far.tobytes(), RATE, 1, FRAME))
            near_frame = audio[k * FRAME : (k + 1) * FRAME]
            frame = self._rtc.AudioFrame(near_frame.tobytes(), RATE, 1, FRAME)
            self._apm.process_stream(frame)
            cleaned = np.frombuffer(bytes(frame.data), dtype=np.int16)
            far_pow, near_pow, out_pow = _power(far), _power(near_frame), _power(cleaned)
            silent = not near_frame.any()  # a muted microphone: no evidence of the echo
            if self.path.update(far_pow, near_pow, digital_silence=silent):
                self.relearn()  # heard after all: learn it from here
            self._far_reach.append(self.path.far_pow)
            self._near_fast += 0.3 * (near_pow - self._near_fast)
            self._measure_erle(far_pow, near_pow, out_pow, silent)
            if self._guard > 0:
                self._guard -= 1
                out.append(self._silence)
            elif self.no_echo:
                out.append(near_frame)
            elif self._echo_only():
                if self.path.far_pow > ACTIVE_POW and (
                    out_pow * 10 ** (_CONVERGED_DB / 10) > near_pow > _ECHO_POW
                ):
                    self._leaks_muted += 1  # AEC3 let an audible part of the echo through
                out.append(self._silence)
            else:
                out.append(self._voice_first(near_frame, cleaned, near_pow, out_pow))
            self._near_count += FRAME
        if not out:
            return np.zeros(0, dtype=np.float32)
        return int16_to_float(np.concatenate(out))

    def _echo_only(self) -> bool:
        """Whether the microphone frame holds nothing but the speaker's echo: it is no
        louder than that echo could be (the loudest far-end power within the echo path's
        reach, times the coupling measured; both smoothed, as speech's power jumps from
        frame to frame), and the person was not heard over the speaker in the last
        :data:`_TALK_HOLD_FRAMES`. Such a frame is muted whatever AEC3 made of it:
        AEC3 lets echo through for a moment when the echo path changes, or after the
        person talked over the answer (seen at -6 dB: the echo of the answer to that
        interruption came through as "two, three, three" and was answered). A person
        talking over the speaker is louder than its echo and passes (through AEC3); one no
        louder than the echo (a speaker as loud at the microphone as the person) is not
        heard until the speaker stops."""
        if self._near_fast > self._loudest_echo() * 10 ** (_TALK_DB / 10):
            if not self._talk_hold:  # heard over the speaker after a muted frame
                self._onset_left = _ONSET_FRAMES
            self._talk_hold = _TALK_HOLD_FRAMES
            return False
        if self._talk_hold > 0:
            self._talk_hold -= 1
            return False
        return True

    def _loudest_echo(self) -> float:
        """The loudest echo the next microphone frame could hold (power)."""
        return self.coupling * max(self._far_reach, default=0.0)

    def _voice_first(
        self,
        near: npt.NDArray[np.int16],
        cleaned: npt.NDArray[np.int16],
        near_pow: float,
        out_pow: float,
    ) -> npt.NDArray[np.int16]:
        """The frame to pass when the person talks over the speaker: AEC3's output, but
        for the first :data:`_ONSET_FRAMES` the microphone's own frame where it is
        :data:`_VOICE_DB` louder than any echo it could hold and AEC3 took away more than
        three quarters of it. AEC3 takes a voice that starts over the speaker for echo at
        first: on the rig it removed 65 dB of the first 10 ms of "Wait" (said 13 dB over
        the echo), 29 dB at 40 ms, 10 dB at 60 ms, and the listener heard the words that
        much later (barge-in) and without their first sounds. The echo then under the
        voice is 10 dB down, for 80 ms at most."""
        if self._onset_left <= 0:
            return cleaned
        self._onset_left -= 1
        if near_pow >= self._loudest_echo() * 10 ** (_VOICE_DB / 10) and out_pow * 4 < near_pow:
            return near
        return cleaned

    def _measure_erle(self, far_pow: float, near_pow: float, out_pow: float, silent: bool) -> None:
        """Follow how much of the echo AEC3 removes while the speaker plays (frame powers,
        microphone in and out), and decide when it has converged (never from a digitally
        silent microphone, whose "echo" is all removed)."""
        if far_pow < ACTIVE_POW or silent:
            return
        if self.converged:
            if not self.no_echo and near_pow > _ECHO_POW:  # (the echo has come)
                erle = 10 * float(np.log10((near_pow + 1.0) / (out_pow + 1.0)))
                self._erle_frames.append(min(_ERLE_CAP_DB, erle))
            return
        self._recent.append((near_pow, out_pow))
        if self._cold_frames <= 0 and len(self._recent) == _CONVERGED_FRAMES:
            near_sum = sum(p for p, _ in self._recent)
            out_sum = sum(p for _, p in self._recent)
            self.converged = self.no_echo or near_sum >= out_sum * 10 ** (_CONVERGED_DB / 10)

    def relearn(self) -> None:
        """Cold again, unless there is no echo: the echo path may have changed."""
        if not self.no_echo:
            self.converged, self._cold_frames = False, self._warm_up_frames
            self._recent.clear()

    @property
    def erle_db(self) -> float | None:
        """Echo return loss enhancement since :meth:`take_erle`: how much quieter the
        speaker's sound is in the cleaned microphone than in the raw one, the median of
        the frames where the speaker plays (frames where someone talks over it are few, and
        do not move it). None: no echo removed since (not converged, or none to remove)."""
        return self.take_erle(keep=True)["echo_erle_db"]

    def take_erle(self, *, keep: bool = False) -> dict[str, float | None]:
        """ERLE over the frames since the last call (a turn's, in its metrics): the median
        (``echo_erle_db``) and the worst tenth (``echo_erle_p10_db``: echo let through), and
        how long the echo AEC3 let through was muted (``echo_leaks_muted_ms``)."""
        frames, leaks = self._erle_frames, self._leaks_muted
        if not keep:
            self._erle_frames, self._leaks_muted = [], 0
        median, p10 = (
            (round(float(v), 1) for v in np.percentile(frames, [50, 10]))
            if frames
            else (None, None)
        )
        return {
            "echo_erle_db": median,
            "echo_erle_p10_db": p10,
            "echo_leaks_muted_ms": float(10 * leaks) if frames or leaks else None,
        }

    @property
    def no_echo(self) -> bool:
        """The speaker is not heard in the microphone (a headset): AEC3 is bypassed."""
        return self.path.no_echo

    @property
    def coupling(self) -> float:
        """The speaker in the microphone (power ratio)."""
        return self.path.coupling

    async def cancel(self, chunks: AsyncIterator[FloatAudio]) -> AsyncIterator[FloatAudio]:
        """The microphone stream with the speaker's echo removed (16 kHz)."""
        async for chunk in chunks:
            yield await self._thread.call(self.process, chunk)

    def close(self) -> None:
        self._thread.close()
