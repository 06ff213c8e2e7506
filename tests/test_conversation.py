"""Conversation history and its trimming to the context window."""

from __future__ import annotations

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
