"""The LLM stage puts what the person has surely said in the KV cache while they speak."""

from __future__ import annotations

import threading
import time

from voicegrok.frames import UserText
from voicegrok.stages import LLMStage
from voicegrok.testing import FakeChat, run_stage
from voicegrok.text import agreed_words
from voicegrok.threads import EngineThread


def partial(text: str, turn_id: int = 1) -> UserText:
    return UserText(turn_id=turn_id, text=text, final=False)


def test_partials_agree_on_the_words_both_heard_except_the_newest_last_word() -> None:
    assert agreed_words("Can you put", "Can you put this itinerary") == "Can you put"
    assert agreed_words("Can you put this eye t", "Can you put this itinerary in") == (
        "Can you put this"
    )
    assert agreed_words("And now...", "And now can you") == "And"
    assert agreed_words("Please add a col-", "Please add a col- umn") == "Please add a"
    assert agreed_words("", "Hello there") == ""
    assert agreed_words("Hello there", "Hello") == ""
    # words forced on whisper leave two out: "Atlanta" cut short twice, its "a" not agreed
    older, newer = "And now can you do this for a plan?", "And now can you do this for a planet?"
    assert agreed_words(older, newer) == "And now can you do this for a"
    assert agreed_words(older, newer, unsure=2) == "And now can you do this for"
    # the LLM's: commas and stops whisper changes as it hears more do not part them
    older, newer = "And now can you do this?", "And now, can you do this for a plan?"
    assert agreed_words(older, newer) == "And"
    assert agreed_words(older, newer, loose=True) == "And now, can you do this"
    assert agreed_words("And now...", "And now can you", loose=True) == "And now"
    assert agreed_words("Please add a col-", "Please add a col- umn", loose=True) == "Please add a"


async def test_the_agreed_words_are_evaluated_ahead_of_the_final_transcript() -> None:
    chat = FakeChat()
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread)
    stage.conversation.add_user("Hi")
    stage.conversation.add_assistant("Hello!")
    await run_stage(
        stage,
        [
            partial("Can you put"),
            partial("Can you put this eye t"),  # agrees on 3 words
            partial("Can you put this itinerary in"),  # 4
            partial("Can you put this itinerary in"),  # 5
            partial("Something else entirely", turn_id=2),  # a new turn: nothing agreed yet
        ],
    )
    thread.run(lambda: None)  # the queued work is done
    thread.close()
    users = [w[-1]["content"] for w in chat.warmed]
    assert users == ["Can you put", "Can you put this", "Can you put this itinerary"]
    assert not any(chat.warmed_in_background), "the person's words are waited for"
    assert all(chat.warmed_open_end), "more words will follow them: no message end, no cue"
    history = [m["content"] for m in chat.warmed[0][:-1]]
    assert history[1:] == ["Hi", "Hello!"], "after the history, as the real prompt will be"
    assert not chat.prompts, "nothing is answered from a partial"
    assert [t["content"] for t in stage.conversation.turns] == ["Hi", "Hello!"]


async def test_fewer_agreed_words_do_not_cut_back_what_was_evaluated() -> None:
    """Partials that change a word agree on fewer words than the two before: those are in
    the KV cache already, and evaluating them again would cut the cache back to them (the
    words after them may still be right). A new turn starts afresh."""
    chat = FakeChat()
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread)
    await run_stage(
        stage,
        [
            partial("Can you put this itinerary in"),
            partial("Can you put this itinerary in a"),
            partial("Can you put that itinerary in a table"),  # agreed: "Can you put"
            partial("Can you put that itinerary in a table please"),
            partial("Can you", turn_id=2),
            partial("Can you put it there", turn_id=2),
        ],
    )
    thread.run(lambda: None)
    thread.close()
    assert [w[-1]["content"] for w in chat.warmed] == [
        "Can you put this itinerary in",
        "Can you put that itinerary in a table",
        "Can you",  # (the words the new turn's partials agree on)
    ]


async def test_a_prefill_still_queued_when_the_final_text_comes_is_skipped() -> None:
    """The final transcript's answer must not wait behind a prefill that is now useless."""
    chat = FakeChat(replies=["Sure."])
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread)
    gate = threading.Event()
    thread.submit(lambda: gate.wait(10))  # the LLM thread is busy (e.g. a previous answer)
    final = UserText(turn_id=1, text="Can you put this itinerary in a table?")
    frames = [partial("Can you put this"), partial("Can you put this itinerary"), final]
    threading.Timer(0.2, gate.set).start()
    await run_stage(stage, frames)
    thread.run(lambda: None)  # the queued work is done
    thread.close()
    assert [p[-1]["content"] for p in chat.prompts] == [final.text]
    prefills = [w for w in chat.warmed if w[-1]["role"] == "user"]
    assert prefills == [], "skipped: the question was already answered"


async def test_a_prefill_running_when_the_final_text_comes_gives_way_to_the_answer() -> None:
    """A partial's prefill that began just before the pause must not hold the answer back:
    the warm-up is told to stop (between two chunks, on a real engine) once the answer
    waits, and the answer comes at once."""

    class SlowWarmUp(FakeChat):
        def warm_up(self, messages, *, background=False, stop=None, open_end=False):  # type: ignore[no-untyped-def]
            super().warm_up(messages, background=background, stop=stop, open_end=open_end)
            assert stop is not None
            self.gave_way = stop.wait(5)  # a long prefill, cut short when told

    chat = SlowWarmUp(replies=["Sure."])
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread)
    final = UserText(turn_id=1, text="Can you put this itinerary in a table?")
    started = time.perf_counter()
    out = await run_stage(
        stage, [partial("Can you put this"), partial("Can you put this itinerary"), final]
    )
    took = time.perf_counter() - started
    thread.close()
    assert [w[-1]["content"] for w in chat.warmed][:1] == ["Can you put this"]
    assert chat.gave_way, "the prefill was not told to stop"
    assert [p[-1]["content"] for p in chat.prompts] == [final.text]
    assert any(getattr(f, "text", None) == "Sure." for f in out), out
    assert took < 2, f"the answer waited {took:.1f} s behind the prefill"
    assert not stage._answer_waits.is_set(), "later warm-ups would stop at once"
