"""Pipeline stages: pure logic around injected engines (no devices, sockets or files)."""

from .llm import LLMStage
from .metrics import MetricsStage
from .sentences import ClauseStage
from .stt import STTStage
from .tts import TTSStage

__all__ = ["ClauseStage", "LLMStage", "MetricsStage", "STTStage", "TTSStage"]
