"""Text-to-speech stage: a clause in, its audio out (one chunk per sentence, as produced)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..engines import TextToSpeech
from ..frames import Frame, SpokenClause, TTSAudio
from ..threads import EngineThread


class TTSStage:
    accepts = (SpokenClause,)

    def __init__(self, engine: TextToSpeech, thread: EngineThread | None = None) -> None:
        self._engine = engine
        self._thread = thread or EngineThread("tts")

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, SpokenClause)
        yield frame
        if not frame.spoken:
            return
        text = frame.spoken
        async for pcm in self._thread.stream(lambda: self._engine.synthesize(text)):
            yield TTSAudio(
                turn_id=frame.turn_id,
                pcm=pcm,
                sample_rate_hz=self._engine.sample_rate_hz,
                clause_index=frame.index,
            )
