"""Which response.create a client's commit answers with turn detection on (sans-I/O)."""

from __future__ import annotations

from voicegrok.frames import Interrupt, TurnFailed, TurnMetrics
from voicegrok.server.commit import CommitTracker


def metrics(turn_id: int) -> TurnMetrics:
    return TurnMetrics(
        turn_id=turn_id, source="speech", stt_ms=None, llm_first_token_ms=None,
        tts_first_audio_ms=None, first_audio_ms=None, total_ms=1.0, tokens_per_s=1.0,
        n_tokens=1, clauses=1, audio_s=0.0,
    )  # fmt: skip


def test_without_a_commit_a_create_is_a_response_of_its_own() -> None:
    assert not CommitTracker().takes_create()


def test_the_create_after_a_commit_is_the_committed_turn_s_answer_once() -> None:
    c = CommitTracker()
    c.commit(3)
    assert c.takes_create()
    assert not c.takes_create()  # a second one is a response of its own
    assert c.follow(metrics(2), answered=True) == []  # another turn's end changes nothing
    c.follow(metrics(3), answered=True)
    assert not c.takes_create()


def test_a_create_after_the_committed_answer_ended_is_a_response_of_its_own() -> None:
    c = CommitTracker()
    c.commit(3)
    c.follow(Interrupt(turn_id=3, reason="turn_detected"), answered=True)
    assert not c.takes_create()


def test_a_committed_utterance_with_no_words_answers_the_taken_create_with_an_error() -> None:
    c = CommitTracker()
    c.commit(3)
    assert c.takes_create()
    failed = TurnFailed(turn_id=3, message="no words were heard", stage="stt")
    events = c.follow(failed, answered=False)
    assert [(e.error.code, e.error.message) for e in events] == [  # type: ignore[attr-defined]
        ("response_failed", "no words were heard")
    ]
    assert not c.takes_create()


def test_a_failure_after_the_response_began_is_reported_by_the_response_itself() -> None:
    c = CommitTracker()
    c.commit(3)
    assert c.takes_create()
    failed = TurnFailed(turn_id=3, message="the LLM failed", stage="llm")
    assert c.follow(failed, answered=True) == []


def test_a_new_listener_forgets_the_commit() -> None:
    c = CommitTracker()
    c.commit(3)
    c.reset()
    assert not c.takes_create()
