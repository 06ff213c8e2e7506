"""The JSON text of the Realtime API's messages: a message as a JSON object, and the checks
its strings need before any of them is sent back (JSON's ``\\u`` escapes can spell lone
UTF-16 surrogates, which no Unicode text, and so no reply, can hold). No I/O.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .types import ProtocolError

__all__ = ["has_lone_surrogate", "is_unicode", "load_object", "shown"]


def load_object(message: str | bytes) -> dict[str, Any]:
    """The JSON object a message holds; :class:`ProtocolError` (``invalid_json``) when it is
    not JSON, nests deeper than the decoder's stack, or is not an object."""
    try:
        data = json.loads(message)
    except RecursionError:  # the decoder's own stack: arrays in arrays, thousands deep
        raise ProtocolError("invalid_json", "the message is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError("invalid_json", f"the message is not JSON: {e}") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_json", "an event must be a JSON object")
    return data


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A ``\\u`` escape of a UTF-16 surrogate (JSON lets one stand alone; Unicode does not)."""


def is_unicode(text: str) -> bool:
    """Whether ``text`` is Unicode that can be sent back (no lone surrogate)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def has_lone_surrogate(message: str | bytes, data: dict[str, Any]) -> bool:
    """Whether a string anywhere in the decoded ``message`` holds a lone surrogate (only
    searched for when the text could hold one: rarely, and never in audio)."""
    if isinstance(message, str) and message.isascii() and not _SURROGATE_ESCAPE.search(message):
        return False
    stack: list[Any] = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str) and not is_unicode(value):
            return True
        if isinstance(value, dict):
            stack += [*value.keys(), *value.values()]
        elif isinstance(value, list):
            stack += value
    return False


def shown(kind: object) -> str:
    """A client's event type, fit to be quoted in an error message."""
    if not isinstance(kind, str):
        return "(missing)" if kind is None else "(not a string)"
    short = kind if len(kind) <= 80 else kind[:80] + "…"
    return short.encode(errors="backslashreplace").decode()
