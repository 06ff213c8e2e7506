"""What a ``voicegrok serve`` session remembers of its turns, over a real websocket with
scripted engines: ``conversation.item.truncate`` keeps only the part of an answer the
client played, and an early answer withdrawn because the person went on speaking is
announced with ``conversation.item.deleted``. What the history holds is read from the next
prompt the (fake) LLM is given."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from voicegrok.assistant import Engines
from voicegrok.conversation import Message
from voicegrok.testing import FakeChat, FakeSTT, FakeTTS, FakeVAD, fake_engines

from .conftest import Raw, b64_pcm16, raw, serve, silence, tone

RATE = 24000
"""The sessions' input and output audio rate (the Realtime API's default)."""

ANSWER = "Sure, here is the first part. And here is the second part."
"""Spoken by ``FakeTTS`` (10 ms a character) as three clauses, ending near 30, 245 and
550 ms of the answer's audio (the voice's edges are trimmed a little)."""


def turns(prompt: list[Message]) -> list[Message]:
    """A prompt without its system message: the conversation so far."""
    assert prompt[0]["role"] == "system"
    return prompt[1:]


def audio_ms(events: list[dict[str, Any]]) -> float:
    """Milliseconds of answer audio in ``events``."""
    pcm = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    return len(pcm) / 2 / RATE * 1000


@pytest.mark.parametrize(
    ("played_ms", "heard"),
    [
        (400, "Sure, here is the first part."),
        (150, "Sure,"),
        (0, None),
    ],
)
async def test_a_truncated_answer_is_remembered_as_far_as_it_was_played(
    played_ms: int, heard: str | None
) -> None:
    """After a spoken answer, ``conversation.item.truncate`` at ``audio_end_ms`` inside it
    is acknowledged with ``conversation.item.truncated``; the next prompt holds only the
    clauses played to the end (nothing played: the answer is dropped, the question stays)."""
    chat = FakeChat([ANSWER, "OK."])
    async with serve(fake_engines(llm=chat, tts=FakeTTS())) as server, raw(server) as c:
        await c.ask("Tell me.")
        events = await c.until("response.done")
        assert events[-1]["response"]["status"] == "completed"
        assert audio_ms(events) > 500
        item_id = next(e["item"]["id"] for e in events if e["type"] == "response.output_item.added")
        await c.send(
            {
                "type": "conversation.item.truncate",
                "item_id": item_id,
                "content_index": 0,
                "audio_end_ms": played_ms,
            }
        )
        truncated = await c.next("conversation.item.truncated")
        assert (truncated["item_id"], truncated["content_index"], truncated["audio_end_ms"]) == (
            item_id,
            0,
            played_ms,
        )
        await c.ask("And then?")
        assert (await c.next("response.done"))["response"]["status"] == "completed"
    answer: list[Message] = [] if heard is None else [{"role": "assistant", "content": heard}]
    assert turns(chat.prompts[1]) == [
        {"role": "user", "content": "Tell me."},
        *answer,
        {"role": "user", "content": "And then?"},
    ]


# ---------------------------------------------------------------- an early answer withdrawn

FIRST_WORDS = "Is Paris nice?"
ALL_WORDS = "Is Paris nice in winter?"


def listening_engines(chat: FakeChat) -> Engines:
    """Fakes with a VAD (tones are speech): one second of speech says ``FIRST_WORDS``;
    two seconds with a pause say ``ALL_WORDS``."""
    stt = FakeSTT(by_length=[(2.0, FIRST_WORDS), (60.0, ALL_WORDS)])
    engines = fake_engines(stt=stt, llm=chat, tts=FakeTTS())
    engines.vad = FakeVAD()
    return engines


async def speak(c: Raw, audio: np.ndarray) -> None:
    """Append ``audio`` (24 kHz) in 100 ms pieces, as fast as the socket takes them."""
    step = RATE // 10
    for i in range(0, len(audio), step):
        await c.send({"type": "input_audio_buffer.append", "audio": b64_pcm16(audio[i : i + step])})


@pytest.mark.parametrize("finished", [False, True], ids=["under way", "complete"])
async def test_an_early_answer_withdrawn_is_announced_with_item_deleted(finished: bool) -> None:
    """The person pauses 400 ms after a question (past the 320 ms that let an answer to a
    question out, short of the 480 ms that end the turn), its answer starts, then they go
    on speaking: the answer is cancelled if still under way, both its items (the question
    and the answer) are announced with ``conversation.item.deleted`` and leave the
    history, and the whole utterance is answered as one question."""
    long = "It is noon, " + "and so on " * 40
    chat = FakeChat(["It is noon." if finished else long, "Noon in Paris."], token_delay_s=0.05)
    async with serve(listening_engines(chat)) as server, raw(server) as c:
        await speak(c, np.concatenate([silence(0.5, RATE), tone(1.0, RATE), silence(0.4, RATE)]))
        events = await c.until("response.done" if finished else "response.output_item.added")
        committed = [e["item_id"] for e in events if e["type"] == "input_audio_buffer.committed"]
        assert len(committed) == 1, [e["type"] for e in events]
        question = committed[0]
        answer = next(e["item"]["id"] for e in events if e["type"] == "response.output_item.added")
        if finished:
            assert events[-1]["response"]["status"] == "completed"
        # the person goes on
        await speak(c, np.concatenate([tone(1.0, RATE), silence(1.0, RATE)]))
        events = await c.until("input_audio_buffer.committed")
        done = [e["response"]["status"] for e in events if e["type"] == "response.done"]
        assert done == ([] if finished else ["cancelled"])
        deleted = [e["item_id"] for e in events if e["type"] == "conversation.item.deleted"]
        assert sorted(deleted) == sorted([question, answer]), [e["type"] for e in events]
        assert events[-1]["item_id"] not in (question, answer)
        events = await c.until("response.done")
        assert events[-1]["response"]["status"] == "completed"
        said = [
            e["transcript"]
            for e in events
            if e["type"] == "conversation.item.input_audio_transcription.completed"
        ]
        assert said == [ALL_WORDS]
    assert [turns(p) for p in chat.prompts] == [
        [{"role": "user", "content": FIRST_WORDS}],
        [{"role": "user", "content": ALL_WORDS}],
    ]
