"""``response.create`` as OpenAI documents it, through the official SDK over a real
websocket: with no new input it answers from the conversation so far (a greeting at the
start of a session), and a response's own ``instructions`` and ``output_modalities``
apply to that response only (scripted engines: the logic is under test, not the models);
with turn detection on, a client's commit ends the speech and is answered once (real
models: the listener's end of turn is under test)."""

from __future__ import annotations

import asyncio

from voicegrok.assistant import Engines
from voicegrok.audio import load_audio
from voicegrok.conversation import DEFAULT_SYSTEM_PROMPT
from voicegrok.testing import FakeChat, FakeTTS, fake_engines

from .conftest import DEMO, ask_item, serve
from .test_server import RATE, append_audio, heard_text, sdk, transcript_of, until_done
from .test_vad import voiced_span


async def test_a_response_with_no_new_input_answers_from_the_conversation_so_far() -> None:
    chat = FakeChat(["Hello! What can I do for you?", "Paris.", "Anything else?"])
    async with (
        serve(fake_engines(llm=chat)) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        await anext(aiter(conn))  # session.created
        await conn.response.create()  # the assistant speaks first: a greeting
        events = await until_done(conn)
        assert events[-1].response.status == "completed"
        assert transcript_of(events) == "Hello! What can I do for you?"
        assert any(e.type == "response.output_audio.delta" for e in events)
        assert chat.prompts[-1] == [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}]

        await conn.conversation.item.create(item=ask_item("What is the capital of France?"))
        await conn.response.create()
        assert transcript_of(await until_done(conn)) == "Paris."
        await conn.response.create()  # nothing new: it goes on from what was said
        events = await until_done(conn)
        assert transcript_of(events) == "Anything else?"
        roles = [m["role"] for m in chat.prompts[-1]]
        assert roles == ["system", "assistant", "user", "assistant"]


async def test_a_response_s_instructions_and_modalities_apply_to_it_alone() -> None:
    chat = FakeChat(["Arr, Paris it be.", "Rome."])
    tts = FakeTTS()
    async with (
        serve(fake_engines(llm=chat, tts=tts)) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        await anext(aiter(conn))
        await conn.conversation.item.create(item=ask_item("What is the capital of France?"))
        await conn.response.create(
            response={"instructions": "Talk like a pirate.", "output_modalities": ["text"]}
        )
        events = await until_done(conn)
        done = events[-1].response
        assert done.status == "completed" and done.output_modalities == ["text"]
        assert chat.prompts[-1][0] == {"role": "system", "content": "Talk like a pirate."}
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == "Arr, Paris it be."
        assert not any(e.type.startswith("response.output_audio") for e in events)
        assert tts.spoken == []  # nothing was synthesized for a text response

        await conn.conversation.item.create(item=ask_item("And of Italy?"))
        await conn.response.create()
        events = await until_done(conn)
        assert chat.prompts[-1][0]["content"] == DEFAULT_SYSTEM_PROMPT  # the session's again
        assert events[-1].response.output_modalities == ["audio"]
        assert transcript_of(events) == "Rome."
        assert any(e.type == "response.output_audio.delta" for e in events)
        assert tts.spoken  # spoken again


async def test_a_commit_with_turn_detection_on_ends_the_speech_and_is_answered_once(
    listening: Engines,
) -> None:
    """The common "append, commit, response.create" flow with server VAD on: a recorded
    question appended with no silence after it, then committed, is transcribed and
    answered with one response and no error; a commit with nothing spoken since is
    refused as OpenAI refuses it (input_audio_buffer_commit_empty)."""
    question = load_audio(str(DEMO / "turn3.wav"), RATE)
    _, end_s = voiced_span(load_audio(str(DEMO / "turn3.wav")))
    spoken = question[: int((end_s + 0.05) * RATE)]  # cut right after the last word
    async with (
        serve(listening) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        await anext(aiter(conn))
        await append_audio(conn, spoken)
        await conn.input_audio_buffer.commit()
        await conn.response.create()
        events = await until_done(conn)
        types = [e.type for e in events]
        assert "error" not in types, [e for e in events if e.type == "error"]
        assert types.count("response.created") == 1
        assert "input_audio_buffer.committed" in types
        heard = heard_text(events)
        assert "cost" in heard, heard
        assert events[-1].response.status == "completed"

        await conn.input_audio_buffer.commit()  # nothing new spoken
        async with asyncio.timeout(10):
            async for event in conn:
                if event.type == "error":
                    assert event.error.code == "input_audio_buffer_commit_empty"
                    break


async def test_a_create_taken_as_a_committed_turn_s_answer_applies_its_options(
    listening: Engines,
) -> None:
    """ "append, commit, response.create" with server VAD on, the create asking for text
    only: the committed turn's answer comes as text, nothing synthesized."""
    question = load_audio(str(DEMO / "turn3.wav"), RATE)
    _, end_s = voiced_span(load_audio(str(DEMO / "turn3.wav")))
    async with (
        serve(listening) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        await anext(aiter(conn))
        await append_audio(conn, question[: int((end_s + 0.05) * RATE)])
        await conn.input_audio_buffer.commit()
        await conn.response.create(
            response={"output_modalities": ["text"], "instructions": "Answer in one sentence."}
        )
        events = await until_done(conn)
    types = [e.type for e in events]
    assert "error" not in types and types.count("response.created") == 1, types
    done = events[-1].response
    assert done.status == "completed" and done.output_modalities == ["text"]
    assert "response.output_text.delta" in types
    assert not any(t.startswith("response.output_audio") for t in types), types
