"""Conversation items a client adds (``conversation.item.create``), checked: a user's
message, or the output of a function call the model made."""

from __future__ import annotations

from collections.abc import Collection

from ..protocol import realtime as rt
from .commands import Limits, ToolOutput

__all__ = ["created_item", "function_output", "message_text"]


def message_text(item: rt.Item, limits: Limits, *, waiting: list[str]) -> str:
    """The text of a user's message (``waiting``: the texts not answered yet), or the
    ProtocolError that refuses it."""
    if item.type != "message":
        raise rt.ProtocolError(
            "unsupported_item",
            "function calls come from the model; add their output as a function_call_output item",
            param="item.type",
        )
    if item.role != "user":
        raise rt.ProtocolError(
            "unsupported_item",
            "only user messages can be added (the assistant's come from its answers)",
            param="item.role",
        )
    text = item.text()
    if not text:
        raise rt.ProtocolError("invalid_value", "the message has no text", param="item")
    if len(text) > limits.max_text_chars:
        raise rt.ProtocolError(
            "text_too_long",
            f"a message holds at most {limits.max_text_chars} characters",
            param="item.content",
        )
    if sum(len(t) for t in waiting) + len(text) > limits.max_text_chars:
        raise rt.ProtocolError(
            "text_too_long",
            f"the messages waiting for response.create hold at most "
            f"{limits.max_text_chars} characters: ask for a response first",
            param="item.content",
        )
    return text


def function_output(
    item: rt.Item, calls: Collection[str], limits: Limits
) -> tuple[ToolOutput, rt.ItemCreated]:
    """The output of one of the model's ``calls`` (those waiting for theirs), or the
    ProtocolError that refuses it."""
    if item.call_id is None or item.call_id not in calls:
        raise rt.ProtocolError(
            "invalid_value",
            f"no function call {item.call_id!r} is waiting for its output",
            param="item.call_id",
        )
    output = item.output or ""
    if len(output) > limits.max_text_chars:
        raise rt.ProtocolError(
            "text_too_long",
            f"a function's output holds at most {limits.max_text_chars} characters",
            param="item.output",
        )
    return ToolOutput(item.call_id, output), created_item(item.model_copy(update={"role": None}))


def created_item(item: rt.Item) -> rt.ItemCreated:
    made = {"id": item.id or rt.new_id("item"), "object": "realtime.item", "status": "completed"}
    return rt.ItemCreated(item=item.model_copy(update=made))
