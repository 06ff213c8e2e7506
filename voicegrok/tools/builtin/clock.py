"""The clock: the local time and date, and the date a number of days or weeks away
("what's the date on Friday in two weeks")."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from ..base import Outcome, Tool, ToolContext, ToolError, sync_tool
from ..words import plain

__all__ = ["tools"]

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _time_of(now: datetime) -> str:
    return now.strftime("%-I:%M %p").replace("AM", "a.m.").replace("PM", "p.m.")


def _date_of(day: date) -> str:
    return day.strftime("%A, %B %-d, %Y")


def _now(context: ToolContext, arguments: dict[str, Any]) -> Outcome:
    now = context.now()
    zone = now.tzname() or "local time"
    output = f"{now.strftime('%Y-%m-%d %H:%M')} ({zone}), {now.strftime('%A')}"
    if arguments.get("want") == "date":
        return Outcome(output, say=f"Today is {_date_of(now.date())}.")
    return Outcome(output, say=f"It's {_time_of(now)}")  # "p.m." ends the sentence


def _day(context: ToolContext, arguments: dict[str, Any]) -> Outcome:
    try:
        days = int(arguments.get("days_from_now") or 0)
        weeks = int(arguments.get("weeks_from_now") or 0)
    except (TypeError, ValueError):
        raise ToolError("days and weeks must be whole numbers") from None
    if abs(days) > 36500 or abs(weeks) > 5200:
        raise ToolError("that is too far away")
    weekday = str(arguments.get("weekday") or "").strip().lower()
    today = context.now().date()
    day = today + timedelta(days=days, weeks=weeks)
    if weekday:
        if weekday not in WEEKDAYS:
            raise ToolError(f"{weekday!r} is not a day of the week")
        ahead = (WEEKDAYS.index(weekday) - day.weekday()) % 7
        if ahead == 0 and day == today:
            ahead = 7  # "on Friday", said on a Friday: the next one
        day += timedelta(days=ahead)
    label = {0: "Today", 1: "Tomorrow", -1: "Yesterday"}.get((day - today).days)
    away = (day - today).days
    output = (
        f"{day.isoformat()} ({day.strftime('%A')}), {away} day{'' if away == 1 else 's'} from today"
    )
    say = f"{label} is {_date_of(day)}." if label else f"That's {_date_of(day)}."
    return Outcome(output, say=say)


_ASK_TIME = re.compile(
    r"^(?:hey |okay |ok |so |please )*(?:what(?:'s| is) the (?:current )?time(?: now| right now)?"
    r"|what time is it(?: now| right now)?|(?:can|could) you tell me (?:the time|what time it is)"
    r"|do you (?:know|have) the time|tell me the time)(?:,? please)?$"
)
_ASK_DATE = re.compile(
    r"^(?:hey |okay |ok |so |please )*(?:what(?:'s| is) (?:the date|today's date)(?: today)?"
    r"|what day is (?:it|today)(?: today)?|what(?:'s| is) today"
    r"|what(?:'s| is) the day today|tell me the date)(?:,? please)?$"
)
_ASK_DAY = re.compile(
    r"^(?:hey |okay |ok |so |please )*(?:what(?:'s| is| will be) the date|what date is"
    r"|what day (?:of (?:the|a) week )?(?:is|will it be)|which (?:date|day) is"
    r"|what date will it be)"
    r"(?P<when>.+)$"
)
_IN = re.compile(r"\bin (?P<n>\d+|a|an|one) (?P<unit>days?|weeks?)\b")
_WEEKDAY = re.compile(r"\b(?:on |next |this )?(?P<day>" + "|".join(WEEKDAYS) + r")\b")


def _match_now(text: str) -> dict[str, Any] | None:
    request = plain(text)
    if _ASK_TIME.match(request):
        return {"want": "time"}
    if _ASK_DATE.match(request):
        return {"want": "date"}
    return None


def _match_day(text: str) -> dict[str, Any] | None:
    request = _ASK_DAY.match(plain(text))
    if request is None:
        return None
    when = request["when"]
    arguments: dict[str, Any] = {}
    if re.search(r"\btomorrow\b", when):
        arguments["days_from_now"] = 1
    elif re.search(r"\bday after tomorrow\b", when):
        arguments["days_from_now"] = 2
    for m in _IN.finditer(when):
        n = 1 if m["n"] in ("a", "an", "one") else int(m["n"])
        key = "weeks_from_now" if m["unit"].startswith("week") else "days_from_now"
        arguments[key] = arguments.get(key, 0) + n
    if re.search(r"\bnext week\b", when):
        arguments["weeks_from_now"] = arguments.get("weeks_from_now", 0) + 1
    weekday = _WEEKDAY.search(when)
    if weekday:
        arguments["weekday"] = weekday["day"]
    return arguments or None


def tools(context: ToolContext) -> list[Tool]:
    return [
        sync_tool(
            "get_time",
            "The current local time and date.",
            {
                "type": "object",
                "properties": {"want": {"type": "string", "enum": ["time", "date"]}},
            },
            lambda arguments: _now(context, arguments),
            _match_now,
        ),
        sync_tool(
            "get_date",
            "The date a number of days or weeks from today, or of the next given weekday "
            "after that (Friday in two weeks: weeks_from_now 2, weekday friday).",
            {
                "type": "object",
                "properties": {
                    "days_from_now": {"type": "integer"},
                    "weeks_from_now": {"type": "integer"},
                    "weekday": {"type": "string", "enum": list(WEEKDAYS)},
                },
            },
            lambda arguments: _day(context, arguments),
            _match_day,
        ),
    ]
