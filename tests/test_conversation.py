"""Conversation history and its trimming to the context window."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from voicegrok.conversation import Conversation, Message


def words(messages: Sequence[Message]) -> int:
    return sum(len(m["content"].split()) for m in messages)


def test_messages_start_with_the_system_prompt_and_keep_order() -> None:
    """The prompt is the system message then the turns as they happened."""
    c = Conversation("Be brief.")
    c.add_user("hi")
    c.add_assistant("hello")
    c.add_user("bye")
    assert [m["role"] for m in c.messages()] == ["system", "user", "assistant", "user"]
    assert c.messages()[0]["content"] == "Be brief."


def test_old_exchanges_are_dropped_to_fit_and_the_newest_message_stays() -> None:
    """Trimming drops whole old turns and never starts with an assistant message."""
    c = Conversation("sys")
    for i in range(20):
        c.add_user(f"question {i} " + "pad " * 10)
        c.add_assistant(f"answer {i} " + "pad " * 10)
    c.add_user("the last question")
    msgs = c.messages(words, budget=60)
    assert words(msgs) <= 60
    assert msgs[0]["role"] == "system"
    assert msgs[1]["role"] == "user"
    assert msgs[-1]["content"] == "the last question"
    assert len(msgs) > 2


def test_keep_heard_keeps_only_what_was_spoken() -> None:
    """After a barge-in only the spoken part of the answer stays in the history."""
    c = Conversation()
    c.add_user("tell me a story", turn_id=1)
    c.add_assistant("Once upon a time there was a very long story.", turn_id=1)
    c.keep_heard(1, "Once upon a time")
    assert c.turns[-1] == {"role": "assistant", "content": "Once upon a time"}


def test_an_answer_interrupted_before_a_word_was_heard_is_dropped() -> None:
    c = Conversation()
    c.add_user("tell me a story", turn_id=1)
    c.add_assistant("Once upon a time.", turn_id=1)
    c.keep_heard(1, "")
    assert c.turns == [{"role": "user", "content": "tell me a story"}]


def test_the_history_is_cut_at_the_same_place_from_one_question_to_the_next() -> None:
    """The LLM reuses the prompt it evaluated last only from where they part: once the
    history fills its budget, the place where it is cut must not move at every question.
    The prompt warmed up after an answer is the start of the next question's prompt, and
    the cut moves forward only now and then, by about half the budget."""
    c = Conversation("sys")
    budget = 200
    cuts = []
    for i in range(60):
        c.add_user(f"question {i} " + "pad " * (3 + i % 5))
        question = c.messages(words, budget)
        assert words(question) <= budget
        assert question[-1]["content"].startswith(f"question {i}")
        c.add_assistant(f"answer {i} " + "pad " * (10 + 7 * (i % 3)))
        warmed = c.messages(words, budget)  # the history, while the answer is spoken
        after = c.snapshot()  # the next question, as it would be sent
        after.add_user(f"next {i}")
        following = after.messages(words, budget)
        assert following[: len(warmed)] == warmed, f"question {i + 1} starts elsewhere"
        cuts.append(warmed[1]["content"])
    moves = sum(1 for a, b in itertools.pairwise(cuts) if a != b)
    assert moves >= 3, "the long conversation was cut"
    assert moves <= 60 // 4, f"the cut moved {moves} times in 60 exchanges"
