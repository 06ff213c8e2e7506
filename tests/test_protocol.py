"""The Realtime wire format as a pure encoder/decoder: no event loop, no socket."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from voicegrok.protocol import realtime as rt

SESSION = rt.Session(
    id="sess_1",
    model="voicegrok",
    instructions="Be brief.",
    output_modalities=["audio"],
    audio=rt.AudioConfig(
        input=rt.AudioInput(
            format=rt.AudioFormat(rate=16000),
            turn_detection=rt.TurnDetection(silence_duration_ms=400),
        ),
        output=rt.AudioOutput(format=rt.AudioFormat(), voice="alloy"),
    ),
)
ITEM = rt.Item(
    id="item_1", role="assistant", content=[rt.ContentPart(type="output_audio", transcript="Hi.")]
)
RESPONSE = rt.Response(
    id="resp_1", status="completed", output=[ITEM], usage=rt.Usage(output_tokens=3)
)
DELTA = {"response_id": "resp_1", "item_id": "item_1"}

CLIENT_EVENTS: list[Any] = [
    rt.SessionUpdate(session=SESSION, event_id="c1"),
    rt.SessionUpdate(
        session=rt.Session(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=None)))
    ),
    rt.InputAudioBufferAppend(audio=b"\x01\x00\xff\x7f"),
    rt.InputAudioBufferCommit(),
    rt.InputAudioBufferClear(),
    rt.ConversationItemCreate(
        item=rt.Item(content=[rt.ContentPart(type="input_text", text="Hello")])
    ),
    rt.ResponseCreate(),
    rt.ResponseCreate(response=rt.ResponseOptions(instructions="Shorter.")),
    rt.ResponseCancel(response_id="resp_1"),
    rt.ConversationItemTruncate(item_id="item_1", audio_end_ms=1500),
]

SERVER_EVENTS: list[Any] = [
    rt.ErrorEvent.of(rt.ProtocolError("invalid_json", "not JSON", param="x", event_id="c9")),
    rt.SessionCreated(session=SESSION),
    rt.SessionUpdated(session=SESSION),
    rt.SpeechStarted(audio_start_ms=120, item_id="item_2"),
    rt.SpeechStopped(audio_end_ms=2400, item_id="item_2"),
    rt.Committed(item_id="item_2"),
    rt.Cleared(),
    rt.ItemCreated(item=ITEM),
    rt.ItemDeleted(item_id="item_2"),
    rt.ItemTruncated(item_id="item_1", audio_end_ms=800),
    rt.TranscriptionDelta(item_id="item_2", delta="Hel"),
    rt.TranscriptionCompleted(
        item_id="item_2", transcript="Hello.", usage=rt.TranscriptionUsage(seconds=1.5)
    ),
    rt.ResponseCreated(response=rt.Response(id="resp_1", status="in_progress")),
    rt.ResponseDone(response=RESPONSE),
    rt.OutputItemAdded(response_id="resp_1", item=ITEM),
    rt.OutputItemDone(response_id="resp_1", item=ITEM),
    rt.TextDelta(delta="Hi", **DELTA),
    rt.TextDone(text="Hi.", **DELTA),
    rt.AudioDelta(delta=b"\x00\x01" * 100, **DELTA),
    rt.AudioDone(**DELTA),
    rt.AudioTranscriptDelta(delta="Hi", **DELTA),
    rt.AudioTranscriptDone(transcript="Hi.", **DELTA),
    rt.Metrics(response_id="resp_1", metrics={"tokens_per_s": 91.5, "first_audio_ms": 280.0}),
]


def test_every_client_event_type_is_covered() -> None:
    assert {e.type for e in CLIENT_EVENTS} == rt.CLIENT_EVENT_TYPES


@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=lambda e: e.type)
def test_client_events_round_trip(event: Any) -> None:
    assert rt.parse_client_event(rt.encode(event)) == event


@pytest.mark.parametrize("event", SERVER_EVENTS, ids=lambda e: e.type)
def test_server_events_round_trip(event: Any) -> None:
    assert rt.parse_server_event(rt.encode(event)) == event


def test_audio_is_base64_pcm16_on_the_wire() -> None:
    wire = json.loads(rt.encode(rt.AudioDelta(delta=b"\x00\x01\x02\x03", **DELTA)))
    assert wire["delta"] == base64.b64encode(b"\x00\x01\x02\x03").decode()


def test_leaving_turn_detection_out_keeps_it_and_null_turns_it_off() -> None:
    kept = rt.parse_client_event('{"type": "session.update", "session": {"instructions": "x"}}')
    off = rt.parse_client_event(
        '{"type": "session.update", "session": {"audio": {"input": {"turn_detection": null}}}}'
    )
    assert isinstance(kept, rt.SessionUpdate) and kept.session.audio is None
    assert isinstance(off, rt.SessionUpdate) and off.session.audio and off.session.audio.input
    assert "turn_detection" in off.session.audio.input.model_fields_set


def test_fields_standard_clients_add_are_ignored() -> None:
    event = rt.parse_client_event(
        '{"type": "response.create", "event_id": "e1", "response": {"conversation": "auto",'
        ' "metadata": {"k": "v"}}, "future_field": 1}'
    )
    assert event == rt.ResponseCreate(event_id="e1", response=rt.ResponseOptions())


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("{nope", "invalid_json"),
        (b"\xff\xfe", "invalid_json"),
        ("42", "invalid_json"),
        ('{"type": "response.teleport"}', "unknown_event"),
        ('{"no": "type"}', "unknown_event"),
        ('{"type": "input_audio_buffer.append"}', "invalid_value"),
        ('{"type": "input_audio_buffer.append", "audio": "%%%"}', "invalid_base64"),
        ('{"type": "input_audio_buffer.append", "audio": "AA=="}', "invalid_base64"),
        ('{"type": "input_audio_buffer.append", "audio": 12}', "invalid_base64"),
        (
            '{"type": "conversation.item.truncate", "item_id": "i", "audio_end_ms": -1}',
            "invalid_value",
        ),
        (
            '{"type": "session.update", "session": {"output_modalities": ["smell"]}}',
            "invalid_value",
        ),
        (
            '{"type": "session.update", "session": {"audio": {"input": {"format": '
            '{"type": "audio/pcm", "rate": 12345}}}}}',
            "unsupported_format",
        ),
        (
            '{"type": "session.update", "session": {"audio": {"output": {"format": '
            '{"type": "audio/pcma"}}}}}',
            "unsupported_format",
        ),
    ],
)
def test_bad_client_messages_raise_a_protocol_error_with_its_code(
    message: str | bytes, code: str
) -> None:
    with pytest.raises(rt.ProtocolError) as e:
        rt.parse_client_event(message)
    assert e.value.code == code and e.value.message


def test_the_client_event_id_is_echoed_in_the_error() -> None:
    with pytest.raises(rt.ProtocolError) as e:
        rt.parse_client_event(
            '{"type": "input_audio_buffer.append", "event_id": "e7", "audio": "%"}'
        )
    assert e.value.event_id == "e7"
    wire = json.loads(rt.encode(rt.ErrorEvent.of(e.value)))
    assert wire["error"]["event_id"] == "e7" and wire["error"]["code"] == "invalid_base64"


def test_a_client_skips_server_event_types_it_does_not_know() -> None:
    assert rt.parse_server_event('{"type": "rate_limits.updated", "event_id": "e"}') is None
