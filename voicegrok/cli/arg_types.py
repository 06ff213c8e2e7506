"""The command line's argument types: each checks one option's value and says what is
wrong with it in argparse's usual way (exit 2)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..userconfig import MAX_GREETING_CHARS

__all__ = ["conversation_id", "gain", "greeting_text", "minutes", "positive", "resume_id"]


def positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _number(text: str, ok: Callable[[float], bool], wanted: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not ok(value):
        raise argparse.ArgumentTypeError(f"{text!r} must be {wanted}")
    return value


def minutes(text: str) -> float:
    return _number(text, lambda v: 0 < v < math.inf, "a positive number of minutes")


def gain(text: str) -> float:
    return _number(text, lambda v: 0 <= v <= 1, "a gain from 0 to 1 (0.25: -12 dB)")


def conversation_id(value: str) -> int:
    if value.isdigit() and int(value) > 0:
        return int(value)
    raise argparse.ArgumentTypeError(f"not a conversation id: {value!r} (voicegrok history)")


def resume_id(value: str) -> int | str:
    """A conversation id, or (``ask --resume "question"``) the text that follows."""
    return int(value) if value.isdigit() and int(value) > 0 else value


def greeting_text(text: str) -> str:
    text = text.strip()
    if len(text) > MAX_GREETING_CHARS:
        raise argparse.ArgumentTypeError(f"{len(text)} characters, at most {MAX_GREETING_CHARS}")
    return text
