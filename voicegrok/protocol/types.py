"""The Realtime API's shared types: the session's configuration, conversation items, audio
as base64 PCM16, ids and the error a refused request raises. No I/O.

``voicegrok.protocol.realtime`` re-exports all of them beside the events.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer

from ..rates import REALTIME_RATE_HZ

__all__ = [
    "PCM_RATES_HZ",
    "AudioConfig",
    "AudioFormat",
    "AudioInput",
    "AudioOutput",
    "ContentPart",
    "FunctionTool",
    "Item",
    "Modality",
    "NamedFunction",
    "Pcm16",
    "ProtocolError",
    "Session",
    "ToolChoice",
    "TurnDetection",
    "choice_name",
    "new_id",
]

Modality = Literal["text", "audio"]

PCM_RATES_HZ = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
"""Sample rates accepted for ``audio/pcm`` (the OpenAI service itself only takes 24 kHz)."""


class ProtocolError(Exception):
    """A client event that cannot be served; becomes an ``error`` event, the session lives on."""

    def __init__(
        self, code: str, message: str, *, param: str | None = None, event_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.event_id = event_id


def _b64decode(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("audio must be a base64 string")
    try:
        pcm = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("audio is not valid base64") from None
    if len(pcm) % 2:
        raise ValueError("audio must be 16-bit PCM (an even number of bytes)")
    return pcm


def _b64encode(pcm: bytes) -> str:
    return base64.b64encode(pcm).decode("ascii")


Pcm16 = Annotated[bytes, BeforeValidator(_b64decode), PlainSerializer(_b64encode, return_type=str)]
"""16-bit PCM bytes in memory, base64 text on the wire."""

_ids = itertools.count(1)


def new_id(prefix: str) -> str:
    """A process-unique id such as ``event_12`` (ids only need to be unique per session)."""
    return f"{prefix}_{next(_ids)}"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def model_post_init(self, context: Any, /) -> None:
        # the tag is always sent, even when it was left to its default
        if "type" in type(self).model_fields:
            self.__pydantic_fields_set__.add("type")


# ---------------------------------------------------------------------------- session


class AudioFormat(_Model):
    type: Literal["audio/pcm", "audio/pcmu", "audio/pcma"] = "audio/pcm"
    rate: int = REALTIME_RATE_HZ
    """Hertz."""


class TurnDetection(_Model):
    """Server-side end of turn and barge-in (``null`` in a session turns them off)."""

    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=2000)
    silence_duration_ms: int | None = Field(default=None, ge=100, le=5000)
    create_response: bool = True
    interrupt_response: bool = True


class AudioInput(_Model):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = None
    transcription: dict[str, Any] | None = None


class AudioOutput(_Model):
    format: AudioFormat | None = None
    voice: str | None = None
    speed: float | None = None


class AudioConfig(_Model):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class FunctionTool(_Model):
    """A function of the client's that the model may call."""

    type: Literal["function"] = "function"
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = Field(default="", max_length=8000)
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object"})


class NamedFunction(_Model):
    type: Literal["function"] = "function"
    name: str = Field(max_length=64)


ToolChoice = Literal["auto", "none", "required"] | NamedFunction
"""Whether the model may, must or must not call a tool, or which one it must call."""


def choice_name(choice: ToolChoice | None) -> str:
    """A tool choice as the LLM stage takes it: ``auto``, ``none``, ``required`` or a
    function's name."""
    if choice is None:
        return "auto"
    return choice.name if isinstance(choice, NamedFunction) else choice


class Session(_Model):
    """A session (what ``session.update`` changes; the server sends it back whole)."""

    type: Literal["realtime"] = "realtime"
    id: str | None = None
    object: str | None = None
    model: str | None = None
    instructions: str | None = Field(default=None, max_length=20_000)
    output_modalities: list[Modality] | None = Field(default=None, min_length=1, max_length=1)
    audio: AudioConfig | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None
    builtin_tools: bool | None = None
    """voicegrok's own: its built-in tools (clock, timers, calculator, units) answer the
    requests that plainly ask for them (OpenAI's service ignores the field)."""
    hears_over_speaker: bool | None = None
    """voicegrok's own: whether the client's microphone hears the person while its speaker
    plays (false while its echo canceller is still learning and mutes the microphone then).
    While false, an answer ready at a pause in the person's words waits for the end of the
    turn, so that it does not mute the rest of them."""


class ContentPart(_Model):
    type: Literal["input_text", "text", "output_text", "input_audio", "output_audio"]
    text: str | None = Field(default=None, max_length=100_000)
    transcript: str | None = None


class Item(_Model):
    """A conversation item: a message, a function call the model made, or the output of
    a call that the client ran."""

    id: str | None = None
    type: Literal["message", "function_call", "function_call_output"] = "message"
    object: str | None = None
    role: Literal["user", "assistant", "system"] | None = "user"
    """For messages (None for function items)."""
    status: str | None = None
    content: list[ContentPart] = Field(default_factory=list, max_length=16)
    call_id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(default=None, max_length=64)
    arguments: str | None = Field(default=None, max_length=100_000)
    """A function call's arguments, as JSON text."""
    output: str | None = Field(default=None, max_length=100_000)
    """A function call's result, as the client gives it."""

    def text(self) -> str:
        return " ".join(p.text or p.transcript or "" for p in self.content).strip()
