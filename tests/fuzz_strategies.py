"""Hypothesis strategies for what a client may send ``voicegrok serve``: every client event
the server takes, valid, then mutated (wrong JSON types, missing and extra fields, huge
strings and arrays, odd unicode), and messages that are no event at all (non-objects,
broken JSON, binary, oversized, nested without end). Used by ``tests/test_fuzz.py`` and
``tests/test_fuzz_audio.py``."""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import numpy as np
from hypothesis import strategies as st

from voicegrok.protocol.realtime import PCM_RATES_HZ
from voicegrok.server.commands import Limits

LATEST_ITEM = "$latest_item"
"""Stands for the id of the session's latest answer (the harness puts it in)."""
LATEST_RESPONSE = "$latest_response"
"""Stands for the id of the session's latest response."""
MAX_MESSAGE = Limits().max_message_bytes

# ------------------------------------------------------------------------ strings

ODD_TEXT = [
    "",
    " ",
    "\x00",
    "\r\n\t",
    '"\\',
    "null",
    "</script><script>",
    "\u202eRTL override",
    "مرحبا بالعالم",
    "שלום עולם",
    "\u200b\u200c\u200d\ufeff\u2060",  # zero-width
    "👩‍👩‍👧‍👦🏳️‍🌈",  # emoji joined by ZWJ
    "\U0001f600" * 50,
    "e\u0301\u0301\u0301",  # combining marks
    "\U0010ffff\ufffe\uffff",  # noncharacters
    "\ud800",  # lone surrogates: JSON's \\u escapes allow them, UTF-8 does not
    "\udfff",
    "a\ud83d",  # half an emoji
]
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
texts = st.one_of(
    st.text(max_size=30),
    st.sampled_from(ODD_TEXT),
    st.lists(st.one_of(st.characters(), surrogates), max_size=6).map("".join),
)
words = st.one_of(st.text(min_size=1, max_size=30), st.just("Count."), texts)
"""Text for a field that takes text: mostly some, sometimes odd."""


def _nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


huge = st.one_of(
    st.sampled_from([10_000, 20_001, 100_001, 400_000]).map(lambda n: "é" * n),
    st.sampled_from([1_000, 100_000]).map(lambda n: [0] * n),
    st.sampled_from([50, 500]).map(_nested),
)
"""Strings and arrays far beyond any limit (and arrays nested deep)."""

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 10**9, 2**31, 2**63, 2**64, 10**30]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, texts)
garbage = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)
"""Any JSON value."""

# ------------------------------------------------------------------------ valid events


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


pcm = st.binary(max_size=2000).map(lambda b: b[: len(b) // 2 * 2])
rates = st.one_of(
    st.sampled_from(PCM_RATES_HZ),
    st.sampled_from(PCM_RATES_HZ),
    st.sampled_from([0, -1, 1, 11025, 96000, 10**9, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
)
formats = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["audio/pcm", "audio/pcm", "audio/pcmu", "audio/pcma", "wav"]),
        "rate": rates,
    },
)
turn_detection = st.none() | st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["server_vad", "semantic_vad"]),
        "threshold": st.floats(0, 1),
        "prefix_padding_ms": st.integers(0, 2000),
        "silence_duration_ms": st.integers(100, 5000),
        "create_response": st.booleans(),
        "interrupt_response": st.booleans(),
    },
)
modalities = st.sampled_from([["text"], ["audio"], ["audio", "text"], []])
session = st.fixed_dictionaries(
    {},
    optional={
        "type": st.just("realtime"),
        "instructions": words,
        "output_modalities": modalities,
        "audio": st.fixed_dictionaries(
            {},
            optional={
                "input": st.fixed_dictionaries(
                    {},
                    optional={
                        "format": formats,
                        "turn_detection": turn_detection,
                        "transcription": st.none() | st.just({"model": "whisper-1"}),
                    },
                ),
                "output": st.fixed_dictionaries(
                    {},
                    optional={"format": formats, "voice": texts, "speed": numbers},
                ),
            },
        ),
        "max_output_tokens": st.integers(1, 4096) | st.just("inf"),
    },
)
item = st.fixed_dictionaries(
    {
        "type": st.just("message"),
        "role": st.sampled_from(["user", "user", "user", "assistant", "system"]),
        "content": st.lists(
            st.fixed_dictionaries({"type": st.sampled_from(["input_text", "text"]), "text": texts}),
            min_size=1,
            max_size=3,
        ),
    },
    optional={"id": texts},
)
EVENTS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "session.update": st.fixed_dictionaries({"session": session}),
    "input_audio_buffer.append": st.fixed_dictionaries({"audio": pcm.map(b64)}),
    "input_audio_buffer.commit": st.just({}),
    "input_audio_buffer.clear": st.just({}),
    "conversation.item.create": st.fixed_dictionaries(
        {"item": item}, optional={"previous_item_id": st.none() | texts}
    ),
    "response.create": st.fixed_dictionaries(
        {},
        optional={
            "response": st.fixed_dictionaries(
                {}, optional={"instructions": texts, "output_modalities": modalities}
            )
        },
    ),
    "response.cancel": st.fixed_dictionaries(
        {}, optional={"response_id": st.just(LATEST_RESPONSE) | texts}
    ),
    "conversation.item.truncate": st.fixed_dictionaries(
        {
            "item_id": st.just(LATEST_ITEM) | texts,
            "content_index": st.integers(0, 2),
            "audio_end_ms": st.integers(0, 3000),
        }
    ),
}
"""Every client event type the server takes, in valid shapes (values may still be refused:
a rate it does not take, an item it cannot add)."""


def _with_type(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda body, eid: {"type": kind, **body, **eid},
        EVENTS[kind],
        st.just({}) | st.fixed_dictionaries({"event_id": texts}),
    )


events = st.sampled_from(sorted(EVENTS)).flatmap(_with_type)

# ------------------------------------------------------------------------ mutations


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The path of every value inside ``value`` (dict keys and list indexes)."""
    out: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        out.append((*path, key))
        if isinstance(inner, dict | list) and inner:
            out += _slots(inner, (*path, key))
    return out


def _get(root: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        root = root[key]
    return root


@st.composite
def mutated(draw: st.DrawFn, event: dict[str, Any]) -> Any:
    """``event`` with one to three of: a field dropped, a field of the wrong JSON type, an
    extra field, a field made huge."""
    out = copy.deepcopy(event)
    for _ in range(draw(st.integers(1, 3))):
        slots = _slots(out)
        how = draw(st.sampled_from(["drop", "retype", "extra", "huge"]))
        if how == "extra" or not slots:
            objects = [()] + [s for s in slots if isinstance(_get(out, s), dict)]
            _get(out, draw(st.sampled_from(objects)))[draw(texts)] = draw(garbage)
            continue
        slot = draw(st.sampled_from(slots))
        parent = _get(out, slot[:-1])
        if how == "drop":
            del parent[slot[-1]]
        else:
            parent[slot[-1]] = draw(garbage if how == "retype" else huge)
    return out


audio_junk = st.one_of(
    st.binary(max_size=99).map(lambda b: b[: len(b) // 2 * 2] + b"\x01").map(b64),  # odd
    texts,  # mostly not base64
    st.sampled_from(
        ["AAA", "A===", "====", "AA==AA==", "AAAA\n", " AAAA", "-_-_", "AAAA" * 3 + "="]
    ),
    st.sampled_from([MAX_MESSAGE // 2, MAX_MESSAGE]).map(lambda n: b64(bytes(n))),  # ~0.7, 1.4 MB
    garbage,
)
"""What may come instead of base64 16-bit PCM in ``input_audio_buffer.append``."""
bad_appends = st.builds(lambda a: {"type": "input_audio_buffer.append", "audio": a}, audio_junk)

# ------------------------------------------------------------------------ messages

RAW = [
    "",
    " ",
    "{",
    "{garbage",
    "null",
    "[]",
    '"text"',
    "1e999",
    "NaN",
    "\ufeff{}",
    '{"type": "session.update"',
    '{"type":"input_audio_buffer.clear"}{"type":"input_audio_buffer.clear"}',
    '{"type":"response.create","type":"junk"}',
    '{"type":"session.update","session":{"max_output_tokens":' + "9" * 5000 + "}}",
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 30_000 + "1" + "}" * 30_000,
    "x" * (MAX_MESSAGE + 1),
]
"""Messages that are not a JSON object, or not JSON at all."""


def to_json(value: Any, ascii_only: bool = True) -> str:
    """``value`` as a message: ASCII JSON (lone surrogates escaped, as a client may), or
    UTF-8 JSON when it can be."""
    if not ascii_only:
        text = json.dumps(value, ensure_ascii=False)
        try:
            text.encode()
            return text
        except UnicodeEncodeError:
            pass
    return json.dumps(value)


def _cut(text: str) -> st.SearchStrategy[str]:
    return st.integers(0, max(0, len(text) - 1)).map(lambda i: text[:i])


def _message(value: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    return st.builds(to_json, value, st.booleans())


valid = _message(events)
messages: st.SearchStrategy[str | bytes] = st.one_of(
    valid,
    valid,
    _message(events.flatmap(mutated)),
    _message(events.flatmap(mutated)),
    _message(bad_appends),
    _message(garbage),
    st.builds(to_json, events).flatmap(_cut),  # cut short
    st.sampled_from(RAW),
    st.binary(max_size=40),
)
"""One websocket message from a hostile or broken client (a valid event now and then)."""


def _ask(text: str) -> list[str]:
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    return [
        json.dumps({"type": "conversation.item.create", "item": item}),
        json.dumps({"type": "response.create"}),
    ]


def _speak(seconds: float) -> list[str]:
    audio = b64(bytes(range(256)) * int(seconds * 48000 * 2 / 256))
    return [
        json.dumps({"type": "input_audio_buffer.append", "audio": audio}),
        json.dumps({"type": "input_audio_buffer.commit"}),
    ]


def _talk(speech_s: float) -> list[str | int]:
    """Speech then a second of silence (24 kHz), 100 ms a message, 10 ms apart: a spoken
    turn to a server that detects turns."""
    chunk = 2400
    tone = np.sin(np.arange(int(speech_s * 24000)) * 2 * np.pi * 220 / 24000) * 8000
    pcm = np.concatenate([tone, np.zeros(24000)]).astype("<i2").tobytes()
    out: list[str | int] = []
    for i in range(0, len(pcm), 2 * chunk):
        audio = b64(pcm[i : i + 2 * chunk])
        out += [json.dumps({"type": "input_audio_buffer.append", "audio": audio}), 1]
    return out


def _truncate(audio_end_ms: int) -> list[str]:
    event = {"item_id": LATEST_ITEM, "content_index": 0, "audio_end_ms": audio_end_ms}
    return [json.dumps({"type": "conversation.item.truncate", **event})]


exchanges: st.SearchStrategy[list[str | int]] = st.one_of(
    st.builds(_ask, words),
    st.builds(_speak, st.sampled_from([0.05, 0.3])),
    st.builds(_talk, st.sampled_from([0.2, 0.8])),
    st.just([json.dumps({"type": "response.cancel", "response_id": LATEST_RESPONSE})]),
    st.builds(_truncate, st.integers(0, 700)),
    st.builds(
        lambda q, n, end: [*_ask(q), n, *_truncate(end)],
        words,
        st.integers(1, 14),
        st.integers(0, 700),
    ),
)
"""Well-formed exchanges: a typed question and response.create, audio and a commit, a
spoken turn, the latest response cancelled or its answer truncated (any may still be
refused: nothing to answer, an answer under way or over, turn detection on). An int: the
assistant puts out that many frames of the answer under way (through a server: wait that
many 10 ms)."""
