"""The server's session core, sans-I/O: client events and frames in, server events and
commands out. No event loop, no socket, no engine: plain function calls."""

from __future__ import annotations

from typing import Any

import numpy as np

from voicegrok.frames import (
    LLMToken,
    SpeechStarted,
    SpokenClause,
    TTSAudio,
    TurnConfirmed,
    TurnFailed,
    TurnMetrics,
    TurnRetracted,
    TurnStarted,
    UserText,
)
from voicegrok.protocol import realtime as rt
from voicegrok.server.commands import Ask, Capabilities, Hear, Limits, Rebuild, Transcribe
from voicegrok.server.core import SessionCore
from voicegrok.turns import EditHistory, EndTurn, Forget, KeepHeard

CAN = Capabilities(listens=True, transcribes=True, speaks=True, max_output_tokens=400)


def names(outputs: list[Any]) -> list[str]:
    return [type(o).__name__ for o in outputs]


def metrics(turn_id: int) -> TurnMetrics:
    return TurnMetrics(
        turn_id=turn_id,
        source="text",
        stt_ms=None,
        llm_first_token_ms=10.0,
        tts_first_audio_ms=20.0,
        first_audio_ms=30.0,
        total_ms=40.0,
        tokens_per_s=50.0,
        n_tokens=2,
        clauses=2,
        audio_s=1.0,
    )


def clause(turn_id: int, index: int, text: str, seconds: float) -> list[Any]:
    pcm = b"\x01\x00" * int(24000 * seconds)
    return [
        SpokenClause(turn_id=turn_id, index=index, text=text, spoken=text),
        TTSAudio(turn_id=turn_id, pcm=pcm, sample_rate_hz=24000, clause_index=index),
    ]


def typed_answer(core: SessionCore, turn_id: int = 7) -> list[Any]:
    """Ask a typed question and feed the frames of its answer up to its second clause."""
    core.receive(
        rt.ConversationItemCreate(
            item=rt.Item(content=[rt.ContentPart(type="input_text", text="Count.")])
        )
    )
    assert names(core.receive(rt.ResponseCreate())) == ["Ask"]
    out = core.asked(turn_id)
    for frame in [
        TurnStarted(turn_id=turn_id, speech_end_s=0.0, source="text"),
        UserText(turn_id=turn_id, text="Count.", source="text"),
        LLMToken(turn_id=turn_id, text="One,", index=0),
        LLMToken(turn_id=turn_id, text=" two.", index=1),
        *clause(turn_id, 0, "One,", 0.5),
        *clause(turn_id, 1, "two.", 0.5),
    ]:
        out += core.frame(frame)
    return out


def test_a_session_starts_with_its_assistant_made_then_session_created() -> None:
    core = SessionCore(CAN, "Be brief.")
    out = core.start()
    assert names(out) == ["Rebuild", "SessionCreated"]
    assert isinstance(out[0], Rebuild) and out[0].listen and out[0].speak


def test_audio_goes_to_the_listener_with_turn_detection_and_to_a_buffer_without() -> None:
    core = SessionCore(CAN, "")
    pcm = np.full(2400, 1000, dtype="<i2").tobytes()
    (hear,) = core.receive(rt.InputAudioBufferAppend(audio=pcm))
    assert isinstance(hear, Hear) and hear.sample_rate_hz == 24000 and len(hear.samples) == 2400
    off = rt.Session(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=None)))
    assert names(core.receive(rt.SessionUpdate(session=off))) == ["Rebuild", "SessionUpdated"]
    assert core.receive(rt.InputAudioBufferAppend(audio=pcm)) == []
    committed, job = core.receive(rt.InputAudioBufferCommit())
    assert isinstance(committed, rt.Committed) and isinstance(job, Transcribe)
    (done,) = core.transcribed(job, "hello")
    assert isinstance(done, rt.TranscriptionCompleted) and done.transcript == "hello"
    assert done.item_id == committed.item_id
    assert names(core.receive(rt.ResponseCreate())) == ["Ask"]


def test_a_typed_answer_becomes_the_apis_events_in_order() -> None:
    core = SessionCore(CAN, "")
    out = typed_answer(core)
    out += core.frame(metrics(7))
    assert names(out) == [
        "ResponseCreated",
        "OutputItemAdded",
        "AudioTranscriptDelta",
        "AudioTranscriptDelta",
        "AudioDelta",
        "AudioDelta",
        "AudioDone",
        "AudioTranscriptDone",
        "OutputItemDone",
        "ResponseDone",
        "Metrics",
    ]
    done = out[-2]
    assert isinstance(done, rt.ResponseDone) and done.response.status == "completed"


def test_response_cancel_ends_the_turn_and_keeps_what_was_generated() -> None:
    core = SessionCore(CAN, "")
    typed_answer(core)
    out = core.receive(rt.ResponseCancel())
    assert names(out) == ["ResponseDone", "EndTurn", "EditHistory"]
    assert out[1] == EndTurn(7, "client_cancelled")
    assert out[2] == EditHistory(7, KeepHeard("One, two.", None))
    (error,) = core.receive(rt.ResponseCancel())
    assert isinstance(error, rt.ErrorEvent) and error.error.code == "response_cancel_not_active"


def test_a_truncate_keeps_the_clauses_played_before_audio_end_ms() -> None:
    core = SessionCore(CAN, "")
    out = typed_answer(core)
    core.frame(metrics(7))
    item = next(o.item.id for o in out if isinstance(o, rt.OutputItemAdded))
    out = core.receive(rt.ConversationItemTruncate(item_id=item, content_index=0, audio_end_ms=700))
    edit, truncated = out[-2:]
    assert edit == EditHistory(7, KeepHeard("One,", 0.7))
    assert isinstance(truncated, rt.ItemTruncated)
    assert (truncated.item_id, truncated.audio_end_ms) == (item, 700)
    (error,) = core.receive(
        rt.ConversationItemTruncate(item_id=item, content_index=0, audio_end_ms=5000)
    )
    assert isinstance(error, rt.ErrorEvent) and error.error.code == "invalid_value"


def test_speech_over_an_answer_cancels_it_unless_interrupt_response_is_off() -> None:
    core = SessionCore(CAN, "")
    typed_answer(core)
    out = core.frame(SpeechStarted(turn_id=8, audio_start_s=1.0))
    assert names(out) == ["SpeechStarted", "ResponseDone", "EndTurn", "EditHistory"]
    done = out[1]
    assert isinstance(done, rt.ResponseDone) and done.response.status == "cancelled"

    quiet = SessionCore(CAN, "")
    td = rt.TurnDetection(interrupt_response=False)
    update = rt.Session(audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=td)))
    quiet.receive(rt.SessionUpdate(session=update))
    typed_answer(quiet)
    assert names(quiet.frame(SpeechStarted(turn_id=8, audio_start_s=1.0))) == ["SpeechStarted"]


def test_a_spoken_turn_confirmed_then_withdrawn_deletes_its_items_and_its_history() -> None:
    core = SessionCore(CAN, "")
    out = core.frame(SpeechStarted(turn_id=3, audio_start_s=0.5))
    for frame in [
        TurnStarted(turn_id=3, speech_end_s=0.0, audio_end_s=1.5, tentative=True),
        UserText(turn_id=3, text="Book a table."),
        LLMToken(turn_id=3, text="Sure.", index=0),
    ]:
        assert core.frame(frame) == [], "held back until confirmed"
    out = core.frame(TurnConfirmed(turn_id=3))
    assert names(out) == [
        "SpeechStopped",
        "Committed",
        "ResponseCreated",
        "TranscriptionCompleted",
        "OutputItemAdded",
        "AudioTranscriptDelta",
    ]
    stopped = out[0]
    assert isinstance(stopped, rt.SpeechStopped) and stopped.audio_end_ms == 1500
    out = core.frame(TurnRetracted(turn_id=3))
    assert names(out) == [
        "ResponseDone",
        "EndTurn",
        "EditHistory",
        "ItemDeleted",
        "ItemDeleted",
        "SpeechStarted",
    ]
    assert out[2] == EditHistory(3, Forget())


def test_a_refused_update_changes_nothing() -> None:
    core = SessionCore(
        Capabilities(listens=False, transcribes=True, speaks=False, max_output_tokens=10), ""
    )
    before = core.describe()
    td = rt.TurnDetection()
    bad = rt.Session(
        instructions="new",
        audio=rt.AudioConfig(input=rt.AudioInput(turn_detection=td)),
    )
    (error,) = core.receive(rt.SessionUpdate(session=bad))
    assert isinstance(error, rt.ErrorEvent) and error.error.code == "unsupported_turn_detection"
    assert core.describe() == before


def test_a_typed_message_is_acknowledged_with_conversation_item_created() -> None:
    """The message comes back as a completed user item with an id (the client's, or one
    made for it), as the API answers ``conversation.item.create``."""
    core = SessionCore(CAN, "")
    content = [rt.ContentPart(type="input_text", text="Hello.")]
    (created,) = core.receive(rt.ConversationItemCreate(item=rt.Item(content=content)))
    assert isinstance(created, rt.ItemCreated)
    assert created.item.id and created.item.status == "completed"
    assert (created.item.role, created.item.text()) == ("user", "Hello.")
    mine = rt.Item(id="item_mine", content=content)
    (created,) = core.receive(rt.ConversationItemCreate(item=mine))
    assert isinstance(created, rt.ItemCreated) and created.item.id == "item_mine"


def test_typed_messages_waiting_for_an_answer_are_limited_in_length_together() -> None:
    """Messages added without response.create pile up only to ``max_text_chars``: the one
    that would pass it is refused, and what waits is answered as one question."""
    core = SessionCore(CAN, "", Limits(max_text_chars=100))
    part = rt.Item(content=[rt.ContentPart(type="input_text", text="x" * 40)])
    for _ in range(2):
        (created,) = core.receive(rt.ConversationItemCreate(item=part))
        assert isinstance(created, rt.ItemCreated)
    (error,) = core.receive(rt.ConversationItemCreate(item=part))
    assert isinstance(error, rt.ErrorEvent) and error.error.code == "text_too_long"
    (ask,) = core.receive(rt.ResponseCreate())
    assert isinstance(ask, Ask) and ask.text == "x" * 40 + " " + "x" * 40


def test_an_answer_goes_on_at_the_output_rate_the_client_switches_to() -> None:
    """``session.update`` with a new output rate mid-answer: the rest of the answer comes at
    that rate (it came at the old one, played too slow or too fast)."""
    core = SessionCore(CAN, "")
    typed_answer(core)  # its clauses are 24 kHz audio: sent as they are
    fmt = rt.AudioFormat(rate=16000)
    update = rt.Session(audio=rt.AudioConfig(output=rt.AudioOutput(format=fmt)))
    assert names(core.receive(rt.SessionUpdate(session=update))) == ["SessionUpdated"]
    out: list[Any] = []
    for frame in clause(7, 2, "three.", 0.5):
        out += core.frame(frame)
    pcm = b"".join(o.delta for o in out if isinstance(o, rt.AudioDelta))
    assert 7000 < len(pcm) // 2 <= 8000  # half a second at 16 kHz (soxr holds its tail back)


def test_audio_sent_before_and_after_an_input_rate_change_keeps_its_duration() -> None:
    """Audio already buffered when the client switches its input rate is converted, so a
    commit holds both parts at the new rate; with turn detection the stream's clock counts
    each part at its own rate (both were counted at the new one: slowed, or hurried)."""
    to_16k = rt.Session(
        audio=rt.AudioConfig(input=rt.AudioInput(format=rt.AudioFormat(rate=16000)))
    )
    half_s_24k = np.full(12000, 1000, dtype="<i2").tobytes()
    half_s_16k = np.full(8000, 1000, dtype="<i2").tobytes()
    core = SessionCore(CAN, "")
    core.receive(rt.InputAudioBufferAppend(audio=half_s_24k))
    core.receive(rt.SessionUpdate(session=to_16k))
    core.receive(rt.InputAudioBufferAppend(audio=half_s_16k))
    assert core.encoder.heard_ms == 1000

    manual = SessionCore(CAN, "")
    off = rt.AudioConfig(input=rt.AudioInput(turn_detection=None))
    manual.receive(rt.SessionUpdate(session=rt.Session(audio=off)))
    manual.receive(rt.InputAudioBufferAppend(audio=half_s_24k))
    manual.receive(rt.SessionUpdate(session=to_16k))
    manual.receive(rt.InputAudioBufferAppend(audio=half_s_16k))
    _, job = manual.receive(rt.InputAudioBufferCommit())
    assert isinstance(job, Transcribe) and job.sample_rate_hz == 16000
    assert abs(len(job.samples) - 16000) <= 1


def test_a_commit_s_response_begins_at_once_and_fails_if_no_words_were_heard() -> None:
    """Turn detection on: a commit while speech is in progress is committed at once and
    the listener is given the end-of-turn silence; the response.create after it begins
    that turn's response at once (the client gets response.created for its request); if
    the utterance had no words (no turn ever starts), that response fails with an error,
    and the session can answer the next one."""
    core = SessionCore(CAN, "Be brief.")
    core.start()
    core.frame(SpeechStarted(turn_id=3, audio_start_s=0.0))
    assert names(core.receive(rt.InputAudioBufferCommit())) == ["CommitSpeech"]
    assert names(core.commit_speech(None, 3)) == ["Committed", "Hear"]
    assert names(core.receive(rt.ResponseCreate())) == ["ResponseCreated"]
    out = core.frame(TurnFailed(turn_id=3, message="no words were heard", stage="stt"))
    assert names(out) == ["ErrorEvent", "ResponseDone"]
    assert out[-1].response.status == "failed"
    assert names(core.commit_speech(None, None)) == ["ErrorEvent"]  # nothing in progress
    core.receive(
        rt.ConversationItemCreate(
            item=rt.Item(content=[rt.ContentPart(type="input_text", text="Count.")])
        )
    )
    assert names(core.receive(rt.ResponseCreate())) == ["Ask"]
