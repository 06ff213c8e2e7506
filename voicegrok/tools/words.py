"""Spoken requests made plain for the tools' phrase matching: numbers as digits
("twelve" -> 12, via text2num), lower case, no trailing punctuation."""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = ["format_number", "plain", "spoken_number"]

_SPACES = re.compile(r"\s+")


def plain(text: str) -> str:
    from text_to_num import alpha2digit

    text = text.strip().lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    try:
        text = alpha2digit(text, "en", threshold=0)
    except (ValueError, IndexError):  # text2num on odd input: keep the words
        pass
    text = re.sub(r"[?!.]+$", "", text.strip())
    return _SPACES.sub(" ", text).strip()


def format_number(value: Fraction | float, digits: int = 10) -> str:
    """A number as a person reads it: whole numbers whole, others to ``digits``
    significant digits without trailing zeros."""
    if isinstance(value, Fraction) and value.denominator == 1:
        return str(value.numerator)
    number = float(value)
    if number.is_integer() and abs(number) < 1e15:
        return str(int(number))
    text = f"{number:.{digits}g}"
    if "e" in text:
        return text
    return text


def spoken_number(value: Fraction | float) -> str:
    """As :func:`format_number`, with a minus said as "minus"."""
    text = format_number(value)
    return "minus " + text[1:] if text.startswith("-") else text
