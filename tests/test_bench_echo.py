"""The echo bench's reading of what it saw (its runs need virtual devices and minutes)."""

from __future__ import annotations

import numpy as np

from voicegrok.bench.echo import barge_in_heard_ms, echo_report, unspoken_turns

Q_END = "itinerary for me"  # (whisper's punctuation after it varies)
QUESTION = (
    "you: Can you make that itinerary for me?\nvoicegrok: Day 1: the Big Apple...(listening…)\n"
)


def test_a_turn_nobody_spoke_is_counted_and_words_withdrawn_are_not() -> None:
    words = "you: Wait, stop. What is 2 plus 2?\nvoicegrok: 4.\n"
    real = "\n(interrupted)\n" + words
    assert unspoken_turns(QUESTION + real, Q_END) == []
    withdrawn = "\n(interrupted)\nyou: wait.\n\n(you went on: still listening…)\n" + words
    assert unspoken_turns(QUESTION + withdrawn, Q_END) == []
    assert unspoken_turns(QUESTION + withdrawn.replace("went on", "?"), Q_END) == ["wait."]
    assert unspoken_turns(QUESTION.replace("?", ".") + real, Q_END) == []
    shown = "\n(interrupted)\nyou: Wait.\nvoicegrok: I'm\n(you went on: still listening…)\n"
    assert unspoken_turns(QUESTION + shown + words, Q_END) == []
    echo = "\n(interrupted)\nyou: the Big Apple.\nvoicegrok: It is New York.\n"
    assert unspoken_turns(QUESTION + echo + real, Q_END) == ["the Big Apple."]


def test_barge_in_runs_to_the_first_quiet_after_the_words_begin() -> None:
    rate = 1000
    speaker = np.zeros(5 * rate, np.float32)
    speaker[: 2 * rate] = 0.1  # the answer playing...
    speaker[int(1.1 * rate) : int(1.2 * rate)] = 0.0  # (a 100 ms gap between words)
    speaker[4 * rate :] = 0.1  # ...and the next answer
    assert barge_in_heard_ms(speaker, rate, onset=rate) == 1000.0
    assert barge_in_heard_ms(speaker, rate, onset=int(2.5 * rate)) is None  # already quiet


def test_the_report_sums_each_gain() -> None:
    run = {
        "unspoken": [],
        "interruptions": 1,
        "answer_played": 1.0,
        "barge_in_heard_ms": 120.0,
        "echo_erle_db": 35.0,
        "echo_erle_p10_db": 12.0,
        "answered": True,
        "alsa_lines": 0,
    }
    done = [{**run, "gain": 0.25}, {**run, "gain": 0.25, "unspoken": ["for"], "interruptions": 2}]
    report = echo_report([0.25], 2, done)["gains"]["0.25"]
    assert report["db"] == -12.0
    assert (report["unspoken_turns"], report["extra_interruptions"]) == (1, 1)
    assert report["real_question_answered"] == 2
    assert report["barge_in_heard_ms"]["p50"] == 120.0


def test_the_conversation_tells_what_was_said_from_what_nobody_said() -> None:
    from voicegrok.bench.echo import WORDS_OVER
    from voicegrok.bench.echo_talk import FILLER, said_by_whom

    said = ["Tell me a long story about a lighthouse keeper and his dog.", WORDS_OVER, FILLER]
    # transcripts differ a little from what was said
    heard = "Tell me a long story about the lighthouse keeper in his dog"
    assert said_by_whom(heard, said) == said[0]
    assert said_by_whom("Stop. What is two plus two?", said) == WORDS_OVER
    assert said_by_whom("Hmm.", said) == FILLER
    # its own answer heard back, and the fragments echo made of it
    for echo in ("The lighthouse keeper and his dog lived by the sea.", "use with that.", "I"):
        assert said_by_whom(echo, said) is None, echo


def test_the_conversation_counts_words_withdrawn_as_part_of_the_utterance() -> None:
    from voicegrok.bench.echo import turn_lines

    out = (
        "you: I'd like to visit.\n\n(you went on: still listening…)\n"
        "you: I'd like to visit New York.\nvoicegrok: Sure!\n(interrupted)\nyou: Okay.\n"
    )
    assert turn_lines(out) == ["I'd like to visit New York.", "Okay."]
