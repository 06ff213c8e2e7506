"""The model calls tools: in its own format, held back from speech, under a grammar
built from the tools' schemas; the result goes back to it, or the call to the client
whose function it is."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from voicegrok import models
from voicegrok.conversation import Conversation
from voicegrok.engines.llama import LlamaEngine
from voicegrok.engines.llama_batch import BatchedLlamaEngine
from voicegrok.engines.remote_llm import wire_messages
from voicegrok.frames import LLMDone, LLMToken, ToolCallRequested, ToolUsed, UserText
from voicegrok.stages import LLMStage
from voicegrok.testing import FakeChat, run_stage
from voicegrok.threads import EngineThread
from voicegrok.tools import Outcome, Tool, Toolbox
from voicegrok.tools.calls import TRIGGER, classify, offer, parse_call

CITY = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Atlanta", "New York"]},
        "days": {"type": "integer"},
    },
    "required": ["city", "days"],
}


def weather_tool(source: str = "mcp:test", seen: list[dict[str, Any]] | None = None) -> Tool:
    async def run(arguments: dict[str, Any]) -> Outcome:
        if seen is not None:
            seen.append(arguments)
        return Outcome(output=f"sunny in {arguments['city']}")

    return Tool("forecast", "The weather forecast of a city.", CITY, run, source=source)


async def answer(stage: LLMStage, text: str, **kw: Any) -> list[Any]:
    out = await run_stage(stage, [UserText(turn_id=1, text=text, **kw)])
    return out


async def test_a_call_the_model_writes_is_run_and_the_answer_is_written_from_its_result() -> None:
    seen: list[dict[str, Any]] = []
    chat = FakeChat(
        replies=[
            '<tool_call>\n{"name": "forecast", "arguments": {"city": "Paris", "days": 1}}',
            "It will be sunny in Paris.",
        ]
    )
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread, tools=Toolbox([weather_tool(seen=seen)]))
    out = await answer(stage, "Will it rain in Paris tomorrow?")
    thread.close()
    assert seen == [{"city": "Paris", "days": 1}]
    (used,) = [f for f in out if isinstance(f, ToolUsed)]
    assert (used.name, used.output, used.chosen_by) == ("forecast", "sunny in Paris", "llm")
    spoken = "".join(f.text for f in out if isinstance(f, LLMToken))
    assert spoken == "It will be sunny in Paris.", "the call itself is never said"
    assert [f.text for f in out if isinstance(f, LLMDone)] == [spoken]
    assert chat.offers[0] is not None and chat.offers[0].required is False
    second = [m["role"] for m in chat.prompts[1]]
    assert second[-3:] == ["user", "assistant", "tool"]
    assert chat.prompts[1][-1]["content"] == "sunny in Paris"
    roles = [m["role"] for m in stage.conversation.turns]
    assert roles == ["user", "assistant", "tool", "assistant"]


async def test_a_client_function_is_handed_to_the_client_and_ends_the_answer() -> None:
    chat = FakeChat(
        replies=['<tool_call>{"name": "forecast", "arguments": {"city": "Atlanta", "days": 2}}']
    )
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread, tools=Toolbox([weather_tool(source="client")]))
    out = await answer(stage, "Weather in Atlanta?", tool_choice="required")
    thread.close()
    (request,) = [f for f in out if isinstance(f, ToolCallRequested)]
    assert json.loads(request.arguments) == {"city": "Atlanta", "days": 2}
    assert request.call_id
    assert not [f for f in out if isinstance(f, LLMToken)]
    assert [f.text for f in out if isinstance(f, LLMDone)] == [""]
    assert chat.offers[0] is not None and chat.offers[0].required
    assert stage.conversation.turns[-1]["content"].startswith(TRIGGER)


async def test_words_that_only_begin_like_a_call_are_said_and_no_tools_means_no_offer() -> None:
    chat = FakeChat(replies=["<b>Bold</b> claim."])
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread, tools=Toolbox([weather_tool()]))
    out = await answer(stage, "Say something.")
    said = "".join(f.text for f in out if isinstance(f, LLMToken))
    assert said == "<b>Bold</b> claim."
    await answer(stage, "And again.", tool_choice="none")
    builtin_only = LLMStage(chat, thread=thread, tools=Toolbox.builtin())
    await answer(builtin_only, "Who wrote Hamlet?")
    thread.close()
    assert chat.offers[1:] == [None, None]


def test_calls_are_told_from_words_and_parsed() -> None:
    assert classify("  <tool") == "maybe"
    assert classify("<tool_call>{") == "call"
    assert classify("<b>") == "answer"
    assert parse_call('<tool_call>\n{"name": "x", "arguments": {"a": 1}}</tool_call>') is not None
    assert parse_call('<tool_call>{"name": "x", "arguments": "{\\"a\\": 1}"}') is not None
    assert parse_call('<tool_call>{"name": "x", "argu') is None
    assert parse_call("no call") is None


def test_the_api_form_of_a_conversation_with_a_tool_call() -> None:
    conversation = Conversation("system")
    conversation.add_user("Weather?", 1)
    conversation.tool_used(1, "forecast", '{"city": "Paris", "days": 1}', "sunny", for_model=True)
    conversation.add_assistant("Sunny.", 1)
    wire = wire_messages(conversation.messages())
    assert [m["role"] for m in wire] == ["system", "user", "assistant", "tool", "assistant"]
    call = wire[2]["tool_calls"][0]
    assert call["function"] == {"name": "forecast", "arguments": '{"city": "Paris", "days": 1}'}
    assert wire[3] == {"role": "tool", "tool_call_id": call["id"], "content": "sunny"}


@pytest.fixture(scope="module")
def plain() -> Iterator[LlamaEngine]:
    yield LlamaEngine(models.resolve("llm"), threads=2)


@pytest.mark.parametrize(
    "question",
    ["What's the weather in Paris this week?", "Will it snow in Atlanta?", "Hello!"],
)
def test_a_required_call_always_parses_and_fits_its_schema(
    plain: LlamaEngine, question: str
) -> None:
    """Even the 135M default model, which writes no valid call on its own, writes one
    under the grammar: the city one of the enum, the days an integer."""
    tools = offer([weather_tool()], "required")
    messages = [{"role": "user", "content": question}]
    text = "".join(plain.stream_chat(messages, max_tokens=60, temperature=0.0, tools=tools))
    call = parse_call(text)
    assert call is not None, text
    assert call.name == "forecast"
    assert call.arguments["city"] in CITY["properties"]["city"]["enum"]
    assert isinstance(call.arguments["days"], int)


def test_the_batching_engine_writes_the_same_call() -> None:
    """Character for character up to the end of the call. (What follows it may differ in
    white space: the engines evaluate the prompt in batches of other sizes, which changes
    llama.cpp's last bits on some weights; see test_llm_batch's token-for-token test.)"""
    tools = offer([weather_tool()], "forecast")
    messages = [{"role": "user", "content": "Weather in New York for three days?"}]
    batched = BatchedLlamaEngine(models.resolve("llm"), slots=2, threads=2)
    try:
        text = "".join(batched.stream_chat(messages, max_tokens=60, temperature=0.0, tools=tools))
    finally:
        batched.close()
    plain = LlamaEngine(models.resolve("llm"), threads=2)
    alone = "".join(plain.stream_chat(messages, max_tokens=60, temperature=0.0, tools=tools))
    assert parse_call(text) is not None and text.rstrip() == alone.rstrip()


async def test_a_slow_tool_gets_a_filler_said_first() -> None:
    """A tool that takes more than 0.4 s: "One moment." is said while it works, then the
    answer; a quick one gets none."""

    async def slow(arguments: dict[str, Any]) -> Outcome:
        await asyncio.sleep(0.8)
        return Outcome(output="rain in Paris")

    call = '<tool_call>{"name": "forecast", "arguments": {"city": "Paris", "days": 1}}'
    for tool, said in [
        (Tool("forecast", "", CITY, slow, source="mcp:test"), "One moment. It will rain."),
        (weather_tool(), "It will rain."),
    ]:
        chat = FakeChat(replies=[call, "It will rain."])
        thread = EngineThread("llm")
        stage = LLMStage(chat, thread=thread, tools=Toolbox([tool]))
        out = await answer(stage, "Weather?")
        thread.close()
        assert "".join(f.text for f in out if isinstance(f, LLMToken)) == said
        kinds = [type(f).__name__ for f in out if isinstance(f, LLMToken | ToolUsed)]
        assert kinds.index("ToolUsed") == (1 if said.startswith("One") else 0)
