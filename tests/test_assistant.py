"""A whole conversation on fake engines: turn flow, metrics, history, interruption."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from voicegrok.assistant import Assistant
from voicegrok.config import Settings
from voicegrok.frames import (
    Interrupt,
    LLMDone,
    LLMToken,
    SpokenClause,
    TTSAudio,
    TurnFailed,
    TurnMetrics,
    UserText,
)
from voicegrok.testing import FakeChat, FakeSTT, FakeTTS, collect, fake_engines


async def test_a_voice_turn_flows_from_audio_to_speech_with_metrics() -> None:
    """Transcript, tokens, clauses, audio, then LLMDone and TurnMetrics, in that order."""
    engines = fake_engines(
        stt=FakeSTT(["what is up"]),
        llm=FakeChat(["Not much really, thanks for asking. And you?"]),
        tts=FakeTTS(),
    )
    async with Assistant(engines) as a:
        frames = await collect(a.reply(np.full(16000, 0.1, dtype=np.float32), 16000))
    kinds = [type(f).__name__ for f in frames]
    assert kinds[0] == "TurnStarted"
    assert kinds.index("UserText") < kinds.index("LLMToken") < kinds.index("TTSAudio")
    assert kinds[-2:] == ["LLMDone", "TurnMetrics"]
    clauses = [f.spoken for f in frames if isinstance(f, SpokenClause)]
    assert clauses == ["Not much really,", "thanks for asking.", "And you?"]
    assert engines.tts is not None and engines.tts.spoken == clauses  # type: ignore[attr-defined]
    m = frames[-1]
    assert isinstance(m, TurnMetrics)
    assert m.n_tokens == 8 and m.clauses == 3 and m.stt_ms is not None and m.first_audio_ms
    assert m.first_audio_ms <= m.total_ms
    # every step from the end of speech to the first audio is accounted for
    steps = (m.stt_ms, m.llm_first_token_ms, m.first_clause_ms, m.tts_first_audio_ms)
    assert all(s is not None and s >= 0 for s in steps), steps
    assert sum(s for s in steps if s is not None) == pytest.approx(m.first_audio_ms, abs=0.01)
    assert TurnMetrics.from_dict(m.as_dict(), turn_id=m.turn_id).first_clause_ms == (
        pytest.approx(m.first_clause_ms, abs=0.1)
    )


async def test_the_history_carries_over_between_turns() -> None:
    """The second prompt holds the first question and answer."""
    chat = FakeChat(["Paris is lovely.", "It has the Louvre."])
    async with Assistant(fake_engines(llm=chat)) as a:
        await collect(a.ask("Tell me about Paris"))
        await collect(a.ask("What is there?"))
    second = chat.prompts[1]
    assert [m["content"] for m in second[1:]] == [
        "Tell me about Paris",
        "Paris is lovely.",
        "What is there?",
    ]
    assert chat.warmed, "the history is put in the cache after each answer"
    assert all(chat.warmed_in_background), "after the answer's speech has had the cores"


async def test_a_history_narrowed_to_what_was_heard_is_put_in_the_cache_at_once() -> None:
    """After a barge-in, the answer as heard is evaluated while the person speaks, in the
    background, not before the first token of their next question."""
    from voicegrok.turns import KeepHeard

    chat = FakeChat(["One, two, three, four.", "Four."])
    engines = fake_engines(llm=chat)
    async with Assistant(engines) as a:
        await collect(a.ask("Count to four."))
        turn = a.current_turn or 1
        warmed = len(chat.warmed)
        await a.edit_history(turn, KeepHeard("One, two,", None))
        await asyncio.to_thread(engines.threads["llm"].run, lambda: None)  # queued work done
        assert len(chat.warmed) == warmed + 1
        assert [m["content"] for m in chat.warmed[-1][1:]] == ["Count to four.", "One, two,"]
        assert chat.warmed_in_background[-1]


async def test_a_turn_forgotten_leaves_the_cache_as_it_is() -> None:
    """A withdrawn turn leaves the history as it was before it, which the KV cache holds
    already, followed by the words the person is still saying: nothing is evaluated again
    (the history alone would cut those words off)."""
    from voicegrok.turns import Forget

    chat = FakeChat(["Paris is lovely.", "Sure."])
    engines = fake_engines(llm=chat)
    async with Assistant(engines) as a:
        await collect(a.ask("Tell me about Paris"))
        await collect(a.ask("And what"))
        turn = a.current_turn or 2
        await asyncio.to_thread(engines.threads["llm"].run, lambda: None)  # queued work done
        warmed = len(chat.warmed)
        await a.edit_history(turn, Forget())
        await asyncio.to_thread(engines.threads["llm"].run, lambda: None)
        assert len(chat.warmed) == warmed
        assert [t["content"] for t in a.conversation.turns] == [
            "Tell me about Paris",
            "Paris is lovely.",
        ]


async def test_interrupting_stops_generation_and_speech_and_ends_the_turn() -> None:
    """interrupt() ends the turn with Interrupt; the engine stream is closed early."""
    chat = FakeChat(["word " * 500], token_delay_s=0.005)
    async with Assistant(fake_engines(llm=chat)) as a:
        frames = []
        async for frame in a.ask("talk forever"):
            frames.append(frame)
            if sum(isinstance(f, LLMToken) for f in frames) == 10:
                a.interrupt()
        assert isinstance(frames[-1], Interrupt)
        assert not any(isinstance(f, LLMDone) for f in frames)
        await asyncio.sleep(0.1)
        assert chat.stopped_early == 1
        assert a.pipeline.running_tasks == 0
        # the next turn is answered normally
        chat.replies = ["Sure."]
        chat.token_delay_s = 0
        nxt = await collect(a.ask("hello?"))
    assert isinstance(nxt[-1], TurnMetrics)
    assert "".join(f.text for f in nxt if isinstance(f, LLMToken)) == "Sure."


async def test_no_words_heard_fails_the_turn_with_a_message() -> None:
    """An empty transcript ends the turn with TurnFailed, not an empty answer."""
    async with Assistant(fake_engines(stt=FakeSTT([""]))) as a:
        frames = await collect(a.reply(np.zeros(1600, dtype=np.float32), 16000))
        assert isinstance(frames[-1], TurnFailed)
        assert "no words" in frames[-1].message
        ok = await collect(a.ask("still there?"))
        assert isinstance(ok[-1], TurnMetrics)


async def test_a_message_too_long_for_the_context_is_refused_and_forgotten() -> None:
    """A question that cannot fit fails with a clear message and leaves no trace in history."""
    chat = FakeChat(n_ctx=100)
    async with Assistant(fake_engines(llm=chat), Settings(max_tokens=50)) as a:
        frames = await collect(a.ask("word " * 200))
        assert isinstance(frames[-1], TurnFailed)
        assert "too long" in frames[-1].message
        assert a.conversation.turns == []


async def test_audio_at_another_rate_is_resampled_for_the_stt_engine() -> None:
    """48 kHz input reaches the engine as 16 kHz."""
    stt = FakeSTT(["hi"])
    async with Assistant(fake_engines(stt=stt)) as a:
        await collect(a.reply(np.full(48000, 0.1, dtype=np.float32), 48000))
    assert stt.heard == [16000]


async def test_the_speech_is_the_answer_without_markdown() -> None:
    """What reaches the voice has no table pipes; the displayed tokens keep them."""
    tts = FakeTTS()
    chat = FakeChat(["| Time | Place |\n|---|---|\n| 9 am | Red Hook |\n"])
    async with Assistant(fake_engines(llm=chat, tts=tts)) as a:
        frames = await collect(a.ask("table please"))
    shown = "".join(f.text for f in frames if isinstance(f, LLMToken))
    assert "|" in shown
    assert tts.spoken == ["Time, Place.", "9 am, Red Hook."]
    assert sum(isinstance(f, TTSAudio) for f in frames) == 2
    assert any(isinstance(f, UserText) and f.source == "text" for f in frames)
