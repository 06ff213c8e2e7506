"""What a :class:`~voicegrok.server.core.SessionCore` is told about its server (limits,
capabilities) and the commands it gives its driver (hear audio, ask, transcribe, ...)."""

from __future__ import annotations

from dataclasses import dataclass

from ..audio import FloatAudio
from ..endpointing import EndpointConfig
from ..protocol import realtime as rt
from ..turns import EditHistory, EndTurn

__all__ = [
    "Ask",
    "Capabilities",
    "Command",
    "CommitSpeech",
    "Hear",
    "Limits",
    "Rebuild",
    "SetInstructions",
    "SetTools",
    "ToolOutput",
    "Transcribe",
    "TurnOptions",
]


@dataclass(frozen=True)
class Limits:
    """What one connection may do (the server refuses the rest with an ``error`` event)."""

    max_message_bytes: int = 1 << 20
    """Largest websocket message (1 MiB: 21 s of 24 kHz audio in base64)."""
    max_buffer_s: float = 60.0
    """Most audio one turn may hold (committed by hand, turn detection off)."""
    max_text_chars: int = 8000
    """Longest typed message, and most text waiting for ``response.create``."""
    messages_per_s: float = 100.0
    """Sustained requests per second (bursts of twice as many pass)."""
    idle_timeout_s: float = 300.0
    """A session that sends nothing for this long is closed."""
    max_sessions: int = 8
    """Concurrent sessions; more connections are refused politely."""
    max_outbox_bytes: int = 16 << 20
    """Unsent server events a client may let pile up (not reading) before it is dropped."""


@dataclass(frozen=True)
class Capabilities:
    """What the server's loaded engines can do for a session."""

    listens: bool
    """A VAD is loaded: server-side turn detection is possible."""
    transcribes: bool
    speaks: bool
    max_output_tokens: int
    builtin_tools: bool = True
    """The built-in tools answer by default (``serve --no-tools``: off)."""
    model_name: str = "voicegrok"
    voice_name: str = "default"


# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True, eq=False)
class Hear:
    """Give microphone audio to the listener (turn detection on)."""

    samples: FloatAudio
    sample_rate_hz: int
    hears_over_speaker: bool = True
    """See :attr:`~voicegrok.frames.AudioChunk.hears_over_speaker` (the client tells it)."""


@dataclass(frozen=True)
class Ask:
    """Start a turn answering ``text`` (empty: from the conversation so far), with
    ``instructions`` as its system prompt if given and its answer in ``modalities``; then
    call :meth:`SessionCore.asked` with its id."""

    text: str
    instructions: str | None = None
    modalities: tuple[rt.Modality, ...] = ("audio",)
    tools: tuple[rt.FunctionTool, ...] | None = None
    """The client's functions for this answer (None: the session's)."""
    tool_choice: str = "auto"


@dataclass(frozen=True)
class CommitSpeech:
    """The client commits with turn detection on: once the listener has taken in all the
    audio given so far (``heard_s``), call :meth:`SessionCore.commit_speech`."""

    heard_s: float
    event_id: str | None = None
    """The client's commit event (an error about it names it)."""


@dataclass(frozen=True, eq=False)
class Transcribe:
    """Transcribe a committed buffer; then call :meth:`SessionCore.transcribed`."""

    item_id: str
    samples: FloatAudio
    sample_rate_hz: int


@dataclass(frozen=True)
class Rebuild:
    """Make the session's assistant anew (its listener or its voice changed)."""

    listen: bool
    speak: bool
    endpointing: EndpointConfig


@dataclass(frozen=True)
class SetInstructions:
    text: str


@dataclass(frozen=True)
class TurnOptions:
    """A client's ``response.create`` taken as a committed turn's answer: its options
    (``ask``'s instructions, modalities, tools) apply to turn ``turn_id``."""

    turn_id: int
    ask: Ask


@dataclass(frozen=True)
class SetTools:
    """The client's functions, and whether the built-in tools answer."""

    tools: tuple[rt.FunctionTool, ...]
    builtin: bool


@dataclass(frozen=True)
class ToolOutput:
    """The client ran the model's call ``call_id``: its output joins the conversation."""

    call_id: str
    output: str


Command = (
    Hear
    | Ask
    | Transcribe
    | Rebuild
    | SetInstructions
    | SetTools
    | ToolOutput
    | TurnOptions
    | EndTurn
    | EditHistory
    | CommitSpeech
)
