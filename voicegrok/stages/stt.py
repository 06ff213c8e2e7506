"""Speech-to-text stage: a whole utterance in, its final transcript out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import ClassVar

from ..audio import resample
from ..engines import SpeechToText
from ..errors import AudioInputError
from ..frames import Frame, UserAudio, UserText
from ..threads import EngineThread


class STTStage:
    accepts: ClassVar[tuple[type[Frame], ...]] = (UserAudio,)
    inline: ClassVar[bool] = False
    passes_while_busy: ClassVar[tuple[type[Frame], ...]] = ()

    def __init__(self, engine: SpeechToText, thread: EngineThread | None = None) -> None:
        self._engine = engine
        self._thread = thread or EngineThread("stt")

    async def process(self, frame: Frame) -> AsyncIterator[Frame]:
        assert isinstance(frame, UserAudio)
        audio = resample(frame.samples, frame.sample_rate_hz, self._engine.sample_rate_hz)
        text = await self._thread.call(self._engine.transcribe, audio)
        if not text.strip():
            raise AudioInputError("no words were heard in the recording")
        yield UserText(turn_id=frame.turn_id, text=text.strip(), final=True, source="speech")
