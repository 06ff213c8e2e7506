"""What a client's commit applies to with turn detection on (sans-I/O logic)."""

from __future__ import annotations

from voicegrok.frames import (
    SpeechStarted,
    TurnConfirmed,
    TurnFailed,
    TurnMetrics,
    TurnStarted,
)
from voicegrok.server.commit import CommitTracker


def started(turn_id: int, *, tentative: bool = False) -> TurnStarted:
    return TurnStarted(turn_id=turn_id, speech_end_s=0.0, tentative=tentative)


def metrics(turn_id: int) -> TurnMetrics:
    return TurnMetrics(
        turn_id=turn_id, source="speech", stt_ms=None, llm_first_token_ms=None,
        tts_first_audio_ms=None, first_audio_ms=None, total_ms=1.0, tokens_per_s=1.0,
        n_tokens=1, clauses=1, audio_s=0.0,
    )  # fmt: skip


def test_nothing_spoken_is_nothing_to_commit() -> None:
    c = CommitTracker()
    assert not c.can_commit()
    c.follow(SpeechStarted(turn_id=1, audio_start_s=0.0))
    assert c.can_commit()
    c.follow(started(1))
    c.follow(metrics(1))
    assert not c.can_commit()  # the turn detection committed it already


def test_the_create_sent_right_after_a_commit_is_the_committed_turn_s_answer() -> None:
    c = CommitTracker()
    c.follow(SpeechStarted(turn_id=1, audio_start_s=0.0))
    c.commit()
    assert not c.can_commit()  # one commit at a time
    assert c.takes_create()  # before its turn starts
    c.follow(started(1))
    c.follow(metrics(1))
    assert not c.takes_create()  # a later one is a response of its own


def test_a_create_after_the_committed_turn_started_is_still_its_answer() -> None:
    c = CommitTracker()
    c.follow(SpeechStarted(turn_id=1, audio_start_s=0.0))
    c.commit()
    c.follow(started(1))
    assert c.takes_create()
    assert not c.takes_create()


def test_a_turn_held_at_a_pause_can_be_committed() -> None:
    """Speech that ended with a short silence: its turn is held until confirmed; a
    commit confirms it (the silence given), and the create that follows is its answer."""
    c = CommitTracker()
    c.follow(SpeechStarted(turn_id=1, audio_start_s=0.0))
    c.follow(started(1, tentative=True))
    assert c.can_commit()
    c.commit()
    c.follow(TurnConfirmed(turn_id=1))
    assert c.takes_create()


def test_a_committed_utterance_with_no_words_answers_the_waiting_create_with_an_error() -> None:
    c = CommitTracker()
    c.follow(SpeechStarted(turn_id=1, audio_start_s=0.0))
    c.commit()
    assert c.takes_create()
    events = c.follow(TurnFailed(turn_id=1, message="no words were heard", stage="stt"))
    assert [e.error.code for e in events] == ["no_words"]  # type: ignore[attr-defined]
    assert not c.takes_create()


def test_a_new_listener_forgets_everything() -> None:
    c = CommitTracker()
    c.follow(SpeechStarted(turn_id=1, audio_start_s=0.0))
    c.commit()
    c.reset()
    assert not c.can_commit() and not c.takes_create()
