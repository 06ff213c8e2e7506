"""Voice activity stage: microphone chunks in; speech starts and whole utterances out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import soxr

from ..endpointing import Ended, EndpointConfig, Endpointer, Started
from ..engines import VoiceActivity
from ..frames import AudioChunk, Frame, SpeechStarted, TurnStarted, UserAudio
from ..threads import EngineThread


class VADStage:
    """Cuts the microphone stream into utterances.

    Emits ``SpeechStarted`` (a control frame: it reaches the output at once, for barge-in)
    when the person starts speaking, then ``TurnStarted`` and ``UserAudio`` when they stop.
    ``TurnStarted.speech_end_s`` is the capture time of the last voiced sample, estimated
    from the arrival time of the chunks.
    """

    accepts = (AudioChunk,)

    def __init__(
        self,
        engine: VoiceActivity,
        next_turn_id: Callable[[], int],
        config: EndpointConfig | None = None,
        thread: EngineThread | None = None,
    ) -> None:
        self._engine = engine
        self._next_turn_id = next_turn_id
        self._endpointer = Endpointer(
            config, sample_rate_hz=engine.sample_rate_hz, window_samples=engine.window_samples
        )
        self._thread = thread or EngineThread("vad")
        self._pending = np.zeros(0, dtype=np.float32)
        self._resampler: Any = None
        self._resampler_rate = 0
        self._consumed = 0
        """Samples (at the engine's rate) received so far."""
        self._turn_id = 0

    def _to_engine_rate(self, chunk: AudioChunk) -> np.ndarray[Any, np.dtype[np.float32]]:
        rate = self._engine.sample_rate_hz
        if chunk.sample_rate_hz == rate:
            return chunk.samples
        if self._resampler is None or self._resampler_rate != chunk.sample_rate_hz:
            self._resampler = soxr.ResampleStream(chunk.sample_rate_hz, rate, 1, dtype="float32")
            self._resampler_rate = chunk.sample_rate_hz
        return np.asarray(self._resampler.resample_chunk(chunk.samples), dtype=np.float32)

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, AudioChunk)
        audio = np.concatenate([self._pending, self._to_engine_rate(frame)])
        self._consumed += len(audio) - len(self._pending)
        win = self._engine.window_samples
        n = len(audio) // win
        self._pending = audio[n * win :]
        if n == 0:
            return
        whole = audio[: n * win]
        probs = await self._thread.call(self._engine.probabilities, whole)
        rate = self._engine.sample_rate_hz

        def capture_time(sample: int) -> float:
            # the chunk's last sample arrived at frame.at_s
            return frame.at_s - (self._consumed - sample) / rate

        for i, p in enumerate(probs):
            event = self._endpointer.feed(whole[i * win : (i + 1) * win], p)
            if isinstance(event, Started):
                self._turn_id = self._next_turn_id()
                yield SpeechStarted(turn_id=self._turn_id, audio_start_s=event.start_sample / rate)
            elif isinstance(event, Ended):
                yield TurnStarted(
                    turn_id=self._turn_id,
                    speech_end_s=capture_time(event.end_sample),
                    source="speech",
                )
                yield UserAudio(turn_id=self._turn_id, samples=event.audio, sample_rate_hz=rate)
