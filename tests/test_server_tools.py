"""The Realtime API's function calling, through the official SDK over a real websocket:
a client's functions in ``session.update`` (or one response's), the model's call sent as
a ``function_call`` item with its arguments, the client's ``function_call_output`` and
the answer written from it; and the server's own built-in tools, switched on or off."""

from __future__ import annotations

import json
from typing import Any

from voicegrok.assistant import Engines
from voicegrok.testing import FakeChat, fake_engines

from .conftest import ask_item, serve
from .test_server import sdk, transcript_of, until_done

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather forecast of a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "enum": ["Paris", "Atlanta", "New York"]}},
        "required": ["city"],
    },
}


async def next_of(conn: Any, *kinds: str) -> Any:
    """The next event of one of ``kinds`` (others, such as voicegrok.metrics, skipped)."""
    async for event in conn:
        if event.type in kinds:
            return event
    raise AssertionError("the connection closed")


def call_of(events: list[Any]) -> Any:
    (item,) = [o for o in events[-1].response.output if o.type == "function_call"]
    return item


async def test_the_function_calling_round_trip_with_the_default_model(engines: Engines) -> None:
    """The real 135M model, its call required: the arguments are valid JSON for the
    schema (the grammar sees to it); the client's output is then answered in words."""
    async with (
        serve(engines) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        await anext(aiter(conn))
        await conn.session.update(
            session={
                "type": "realtime",
                "tools": [WEATHER],  # type: ignore[list-item]
                "tool_choice": {"type": "function", "name": "get_weather"},  # type: ignore[typeddict-item]
                "output_modalities": ["text"],
            }
        )
        await conn.conversation.item.create(item=ask_item("What's the weather in Atlanta?"))
        await conn.response.create()
        events = await until_done(conn)
        kinds = [e.type for e in events]
        assert "response.function_call_arguments.done" in kinds, kinds
        done = next(e for e in events if e.type == "response.function_call_arguments.done")
        call = call_of(events)
        assert events[-1].response.status == "completed"
        assert (call.name, call.call_id, call.arguments) == (
            "get_weather",
            done.call_id,
            done.arguments,
        )
        assert json.loads(call.arguments)["city"] in ("Paris", "Atlanta", "New York")
        await conn.conversation.item.create(
            item={
                "type": "function_call_output",
                "call_id": call.call_id,
                "output": json.dumps({"forecast": "sunny, 21 degrees"}),
            }
        )
        created = await next_of(conn, "conversation.item.created", "error")
        assert created.type == "conversation.item.created", created
        assert created.item.type == "function_call_output"
        await conn.response.create(response={"tool_choice": "none"})
        events = await until_done(conn)
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert events[-1].response.status == "completed" and text.strip()
        assert not [o for o in events[-1].response.output if o.type == "function_call"]


async def test_the_model_sees_the_call_and_its_output_and_bad_outputs_are_refused() -> None:
    chat = FakeChat(
        [
            '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}',
            "It is sunny in Paris.",
        ]
    )
    async with (
        serve(fake_engines(llm=chat)) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        await anext(aiter(conn))
        await conn.conversation.item.create(item=ask_item("Weather in Paris?"))
        await conn.response.create(response={"tools": [WEATHER]})  # type: ignore[list-item]
        events = await until_done(conn)
        call = call_of(events)
        assert json.loads(call.arguments) == {"city": "Paris"}
        assert not transcript_of(events), "the call is not spoken"
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": "call_nobody", "output": "x"}
        )
        error = await next_of(conn, "conversation.item.created", "error")
        assert error.type == "error" and error.error.param == "item.call_id"
        await conn.conversation.item.create(
            item={"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
        )
        await next_of(conn, "conversation.item.created")
        await conn.response.create()
        events = await until_done(conn)
        assert transcript_of(events) == "It is sunny in Paris."
        roles = [m["role"] for m in chat.prompts[-1]]
        assert roles[-3:] == ["user", "assistant", "tool"]
        assert chat.prompts[-1][-1]["content"] == "sunny"
        assert chat.offers[0] is not None and chat.offers[-1] is None, (
            "the response's own tools applied to it alone"
        )


async def test_the_server_s_built_in_tools_can_be_switched_off() -> None:
    chat = FakeChat(["It is a mathematical operation."])
    async with (
        serve(fake_engines(llm=chat)) as server,
        sdk(server).realtime.connect(model="voicegrok") as conn,
    ):
        created = await anext(aiter(conn))
        assert created.session.model_extra.get("builtin_tools") is True
        await conn.conversation.item.create(item=ask_item("What is 12 times 12?"))
        await conn.response.create()
        assert transcript_of(await until_done(conn)) == "12 times 12 is 144."
        assert not chat.prompts, "the calculator answered"
        await conn.session.update(session={"type": "realtime", "builtin_tools": False})  # type: ignore[typeddict-unknown-key]
        await conn.conversation.item.create(item=ask_item("What is 12 times 12?"))
        await conn.response.create()
        events = await until_done(conn)
        assert transcript_of(events) == "It is a mathematical operation."
