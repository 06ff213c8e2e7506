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
    assert CommitTracker().takes_create() is None


def test_the_create_after_a_commit_is_the_committed_turn_s_answer_once() -> None:
    c = CommitTracker()
    c.commit(3)
    assert c.takes_create() == 3
    assert c.takes_create() is None  # a second one is a response of its own
    c.follow(metrics(2))  # another turn's end changes nothing
    assert c.turn == 3
    c.follow(metrics(3))
    assert c.takes_create() is None and c.turn is None


def test_a_create_after_the_committed_answer_ended_is_a_response_of_its_own() -> None:
    c = CommitTracker()
    c.commit(3)
    c.follow(Interrupt(turn_id=3, reason="turn_detected"))
    assert c.takes_create() is None


def test_a_committed_utterance_that_failed_is_forgotten() -> None:
    c = CommitTracker()
    c.commit(3)
    c.follow(TurnFailed(turn_id=3, message="no words were heard", stage="stt"))
    assert c.takes_create() is None


def test_a_new_listener_forgets_the_commit() -> None:
    c = CommitTracker()
    c.commit(3)
    c.reset()
    assert c.takes_create() is None
