"""Unit conversion (length, mass, volume, temperature, speed, time...) through pint."""

from __future__ import annotations

import functools
import re
from typing import Any

from ..base import Outcome, Tool, ToolContext, ToolError, sync_tool
from ..words import format_number, plain

__all__ = ["tools"]

_ALIASES = {
    "celsius": "degC",
    "centigrade": "degC",
    "fahrenheit": "degF",
    "kelvin": "kelvin",
    "kph": "km/h",
    "kmh": "km/h",
    "mph": "mile/hour",
    "stone": "stone",
    "stones": "stone",
}


@functools.cache
def _registry() -> Any:
    import pint

    return pint.UnitRegistry(autoconvert_offset_to_baseunit=True)


@functools.lru_cache(maxsize=256)
def _unit(name: str) -> Any:
    text = re.sub(r"^(?:degrees? |°)", "", name.strip().lower()).strip()
    text = re.sub(r"\bper\b", "/", text).replace(" / ", "/")
    text = _ALIASES.get(text, text)
    text = re.sub(r"\b(square|cubic) (\w+)", r"\1_\2", text)
    text = text.replace(" ", "_") if "/" not in text else text.replace(" ", "")
    ureg = _registry()
    try:
        return ureg.parse_units(text)
    except Exception:
        singular = re.sub(r"(?<=\w)(?:es|s)\b", "", text)
        try:
            return ureg.parse_units(singular)
        except Exception:
            raise ToolError(f"I don't know the unit {name!r}") from None


def _convert(arguments: dict[str, Any]) -> Outcome:
    import pint

    try:
        value = float(arguments.get("value", 1))
    except (TypeError, ValueError):
        raise ToolError("the value to convert must be a number") from None
    source = _unit(str(arguments.get("from_unit", "")))
    target = _unit(str(arguments.get("to_unit", "")))
    try:
        result = _registry().Quantity(value, source).to(target).magnitude
    except pint.DimensionalityError:
        raise ToolError(
            f"{arguments.get('from_unit')} cannot be converted to {arguments.get('to_unit')}"
        ) from None
    precise = format_number(float(f"{result:.6g}"), 8)
    rounded = round(result, 2) if abs(result) >= 1 else float(f"{result:.2g}")
    spoken = format_number(rounded, 8)
    given = format_number(value)
    src = _said(str(arguments.get("from_unit", "")), source)
    dst = _said(str(arguments.get("to_unit", "")), target)
    about = "" if spoken == precise else "about "
    return Outcome(
        f"{given} {src} = {precise} {dst}", say=f"{given} {src} is {about}{spoken} {dst}."
    )


def _said(name: str, unit: Any) -> str:
    """A unit as said: as the person named it, temperatures in degrees."""
    name = name.strip()
    if "temperature" in str(unit.dimensionality) and "kelvin" not in name:
        name = re.sub(r"^(?:degrees? )?(?:deg)?", "degrees ", name.lower())
        name = name.replace("degrees c", "degrees celsius").replace(
            "degrees f", "degrees fahrenheit"
        )
        name = re.sub(r"(celsius|fahrenheit)\w+", r"\1", name)
    return name


_UNIT = r"(?:degrees? )?[a-z°/]+(?: (?:per|squared|cubed) [a-z]+| [a-z]+)??"
_CONVERT = re.compile(
    r"^(?:hey |okay |ok |please |can you |could you )*(?:convert|what(?:'s| is)|how much is"
    r"|how (?:many|much) is)\s+(?P<value>-?\d+(?:\.\d+)?)\s*(?P<src>.+?)\s+"
    r"(?:in|to|into|in terms of)\s+(?P<dst>.+?)(?:,? please)?$"
)
_HOW_MANY = re.compile(
    r"^(?:hey |okay |ok |so )*how (?:many|much) (?P<dst>.+?) (?:are |is )?(?:there )?"
    r"(?:in|is|are) (?P<value>\d+(?:\.\d+)?|an?|one) (?P<src>.+?)$"
)


def _match(text: str) -> dict[str, Any] | None:
    request = plain(text)
    m = _CONVERT.match(request) or _HOW_MANY.match(request)
    if m is None:
        return None
    value = 1.0 if m["value"] in ("a", "an", "one") else float(m["value"])
    src, dst = m["src"].strip(), m["dst"].strip()
    try:
        a, b = _unit(src), _unit(dst)
    except ToolError:
        return None
    if a.dimensionality != b.dimensionality or a.dimensionless:
        return None
    return {"value": value, "from_unit": src, "to_unit": dst}


def tools(context: ToolContext) -> list[Tool]:
    return [
        sync_tool(
            "convert_units",
            "Convert a quantity between units: length, mass, volume, temperature, speed, "
            "time, area, energy.",
            {
                "type": "object",
                "properties": {
                    "value": {"type": "number"},
                    "from_unit": {"type": "string", "description": "e.g. miles, degF, cups"},
                    "to_unit": {"type": "string", "description": "e.g. kilometers, degC, ml"},
                },
                "required": ["value", "from_unit", "to_unit"],
            },
            _convert,
            _match,
        )
    ]
