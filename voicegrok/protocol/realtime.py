"""The wire protocol of ``voicegrok serve``: the event subset of the OpenAI Realtime API
(GA event names), as a pure encoder/decoder (no sockets, no event loop).

``parse_client_event`` turns one websocket message into a typed client event or raises
:class:`ProtocolError` (with the ``error`` code to send back); ``encode`` turns any event
into the JSON text to send. Server events are built by the server and parsed by clients
with ``parse_server_event``. Fields voicegrok does not use are accepted and ignored, so
standard clients that send more than this subset keep working.

Audio is base64 PCM16 little-endian mono at the session's rate (24 kHz by default).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    Field,
    TypeAdapter,
    ValidationError,
)

from .types import (
    PCM_RATES_HZ,
    AudioConfig,
    AudioFormat,
    AudioInput,
    AudioOutput,
    ContentPart,
    FunctionTool,
    Item,
    Modality,
    NamedFunction,
    Pcm16,
    ProtocolError,
    Session,
    ToolChoice,
    TurnDetection,
    _Model,
    choice_name,
    new_id,
)
from .wire import has_lone_surrogate, is_unicode, load_object, shown

__all__ = [
    "PCM_RATES_HZ",
    "AudioConfig",
    "AudioDelta",
    "AudioFormat",
    "AudioInput",
    "AudioOutput",
    "ClientEvent",
    "ContentPart",
    "ErrorEvent",
    "FunctionTool",
    "InputAudioBufferAppend",
    "Item",
    "Modality",
    "NamedFunction",
    "ProtocolError",
    "ServerEvent",
    "Session",
    "ToolChoice",
    "TurnDetection",
    "choice_name",
    "encode",
    "new_id",
    "parse_client_event",
    "parse_server_event",
]

# ----------------------------------------------------------------------- client events


class _ClientEvent(_Model):
    event_id: str | None = Field(default=None, max_length=200)


class SessionUpdate(_ClientEvent):
    type: Literal["session.update"] = "session.update"
    session: Session


class InputAudioBufferAppend(_ClientEvent):
    type: Literal["input_audio_buffer.append"] = "input_audio_buffer.append"
    audio: Pcm16


class InputAudioBufferCommit(_ClientEvent):
    type: Literal["input_audio_buffer.commit"] = "input_audio_buffer.commit"


class InputAudioBufferClear(_ClientEvent):
    type: Literal["input_audio_buffer.clear"] = "input_audio_buffer.clear"


class ConversationItemCreate(_ClientEvent):
    type: Literal["conversation.item.create"] = "conversation.item.create"
    previous_item_id: str | None = None
    item: Item


class ResponseOptions(_Model):
    instructions: str | None = Field(default=None, max_length=20_000)
    output_modalities: list[Modality] | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = None


class ResponseCreate(_ClientEvent):
    type: Literal["response.create"] = "response.create"
    response: ResponseOptions | None = None


class ResponseCancel(_ClientEvent):
    type: Literal["response.cancel"] = "response.cancel"
    response_id: str | None = None


class ConversationItemTruncate(_ClientEvent):
    type: Literal["conversation.item.truncate"] = "conversation.item.truncate"
    item_id: str
    content_index: int = Field(default=0, ge=0)
    audio_end_ms: int = Field(ge=0)
    """How much of the item's audio the client played, in milliseconds."""


ClientEvent = Annotated[
    SessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear
    | ConversationItemCreate
    | ResponseCreate
    | ResponseCancel
    | ConversationItemTruncate,
    Field(discriminator="type"),
]
_client_adapter: TypeAdapter[ClientEvent] = TypeAdapter(ClientEvent)
CLIENT_EVENT_TYPES = frozenset(
    str(m.model_fields["type"].default)
    for m in (
        SessionUpdate,
        InputAudioBufferAppend,
        InputAudioBufferCommit,
        InputAudioBufferClear,
        ConversationItemCreate,
        ResponseCreate,
        ResponseCancel,
        ConversationItemTruncate,
    )
)


# ----------------------------------------------------------------------- server events


class _ServerEvent(_Model):
    event_id: str = Field(default_factory=lambda: new_id("event"))


class ErrorInfo(_Model):
    type: str = "invalid_request_error"
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None
    """The client event that caused it."""


class ErrorEvent(_ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorInfo

    @classmethod
    def of(cls, e: ProtocolError) -> ErrorEvent:
        info = ErrorInfo(code=e.code, message=e.message, param=e.param, event_id=e.event_id)
        return cls(error=info)


class SessionCreated(_ServerEvent):
    type: Literal["session.created"] = "session.created"
    session: Session


class SessionUpdated(_ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    session: Session


class SpeechStarted(_ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(_ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class Committed(_ServerEvent):
    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None = None


class Cleared(_ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class ItemCreated(_ServerEvent):
    type: Literal["conversation.item.created"] = "conversation.item.created"
    previous_item_id: str | None = None
    item: Item


class ItemDeleted(_ServerEvent):
    """An item is gone from the conversation (an answer started at a pause in the
    person's speech is withdrawn, with its question, when they go on speaking)."""

    type: Literal["conversation.item.deleted"] = "conversation.item.deleted"
    item_id: str


class ItemTruncated(_ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int = 0
    audio_end_ms: int


class TranscriptionDelta(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class TranscriptionUsage(_Model):
    type: Literal["duration"] = "duration"
    seconds: float


class TranscriptionCompleted(_ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: TranscriptionUsage = TranscriptionUsage(seconds=0.0)


class Usage(_Model):
    total_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class StatusDetails(_Model):
    type: str
    reason: str | None = None
    error: ErrorInfo | None = None


class Response(_Model):
    object: Literal["realtime.response"] = "realtime.response"
    id: str
    status: Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]
    status_details: StatusDetails | None = None
    output: list[Item] = Field(default_factory=list)
    output_modalities: list[Modality] | None = None
    usage: Usage | None = None


class ResponseCreated(_ServerEvent):
    type: Literal["response.created"] = "response.created"
    response: Response


class ResponseDone(_ServerEvent):
    type: Literal["response.done"] = "response.done"
    response: Response


class OutputItemAdded(_ServerEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int = 0
    item: Item


class OutputItemDone(_ServerEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int = 0
    item: Item


class _Delta(_ServerEvent):
    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class TextDelta(_Delta):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class TextDone(_Delta):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


class AudioDelta(_Delta):
    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: Pcm16


class AudioDone(_Delta):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class AudioTranscriptDelta(_Delta):
    type: Literal["response.output_audio_transcript.delta"] = (
        "response.output_audio_transcript.delta"
    )
    delta: str


class FunctionCallArgumentsDelta(_Delta):
    type: Literal["response.function_call_arguments.delta"] = (
        "response.function_call_arguments.delta"
    )
    call_id: str
    delta: str


class FunctionCallArgumentsDone(_Delta):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    call_id: str
    name: str
    arguments: str


class AudioTranscriptDone(_Delta):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class Metrics(_ServerEvent):
    """voicegrok's own per-turn numbers (standard clients ignore unknown event types)."""

    type: Literal["voicegrok.metrics"] = "voicegrok.metrics"
    response_id: str | None = None
    metrics: dict[str, Any]


ServerEvent = Annotated[
    ErrorEvent
    | SessionCreated
    | SessionUpdated
    | SpeechStarted
    | SpeechStopped
    | Committed
    | Cleared
    | ItemCreated
    | ItemDeleted
    | ItemTruncated
    | TranscriptionDelta
    | TranscriptionCompleted
    | ResponseCreated
    | ResponseDone
    | OutputItemAdded
    | OutputItemDone
    | TextDelta
    | TextDone
    | AudioDelta
    | AudioDone
    | AudioTranscriptDelta
    | AudioTranscriptDone
    | FunctionCallArgumentsDelta
    | FunctionCallArgumentsDone
    | Metrics,
    Field(discriminator="type"),
]
_server_adapter: TypeAdapter[ServerEvent] = TypeAdapter(ServerEvent)


# ------------------------------------------------------------------------- codec


def encode(event: BaseModel) -> str:
    """The JSON text of an event. A client event carries only the fields that were set
    (``"turn_detection": null`` turns server VAD off, leaving it out keeps it as it is);
    a server event carries every field."""
    return event.model_dump_json(exclude_unset=isinstance(event, _ClientEvent))


def _first_error(e: ValidationError, event_id: str | None) -> ProtocolError:
    err = e.errors(include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"][1:])  # [0] is the union's tag
    message = err["msg"].removeprefix("Value error, ")
    code = "invalid_base64" if "base64" in message or "16-bit" in message else "invalid_value"
    return ProtocolError(
        code, f"{where}: {message}" if where else message, param=where or None, event_id=event_id
    )


def parse_client_event(message: str | bytes) -> ClientEvent:
    """One websocket message from a client as a typed event.

    Raises :class:`ProtocolError` for malformed JSON, an unknown ``type``, a missing or
    invalid field, bad base64 or an unsupported audio format: send ``ErrorEvent.of(e)``.
    """
    data = load_object(message)
    kind = data.get("type")
    event_id = data.get("event_id")
    if not isinstance(event_id, str) or not is_unicode(event_id):
        event_id = None  # an id that cannot be sent back is not echoed
    if not isinstance(kind, str) or kind not in CLIENT_EVENT_TYPES:
        raise ProtocolError(
            "unknown_event",
            f"unknown or unsupported event type {shown(kind)}",
            event_id=event_id,
        )
    if has_lone_surrogate(message, data):
        raise ProtocolError(
            "invalid_value",
            "a string in the event holds a lone UTF-16 surrogate (such as \\ud800): "
            "text must be Unicode",
            event_id=event_id,
        )
    try:
        event = _client_adapter.validate_python(data)
    except ValidationError as e:
        raise _first_error(e, event_id) from None
    if isinstance(event, SessionUpdate):
        _check_formats(event.session, event_id)
    return event


def _check_formats(session: Session, event_id: str | None) -> None:
    audio = session.audio
    for side in (audio.input if audio else None, audio.output if audio else None):
        fmt = side.format if side is not None else None
        if fmt is None:
            continue
        which = "input" if side is (audio.input if audio else None) else "output"
        if fmt.type != "audio/pcm":
            raise ProtocolError(
                "unsupported_format",
                f"audio format {fmt.type} is not supported: use audio/pcm (16-bit)",
                param=f"session.audio.{which}.format.type",
                event_id=event_id,
            )
        if fmt.rate not in PCM_RATES_HZ:
            raise ProtocolError(
                "unsupported_format",
                f"sample rate {fmt.rate} Hz is not supported; use one of "
                + ", ".join(str(r) for r in PCM_RATES_HZ),
                param=f"session.audio.{which}.format.rate",
                event_id=event_id,
            )


def parse_server_event(message: str | bytes) -> ServerEvent | None:
    """One message from the server as a typed event; None for event types this client
    does not know (newer servers may send more)."""
    data = load_object(message)
    try:
        return _server_adapter.validate_python(data)
    except ValidationError as e:
        if e.errors()[0]["type"] == "union_tag_invalid":
            return None
        raise ProtocolError("invalid_value", str(e).splitlines()[0]) from None
