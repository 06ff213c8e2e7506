"""Timers and alarms: set, list, cancel. The alert is spoken when one rings (the
conversation's ringer, see :meth:`voicegrok.assistant.Assistant.alerts`)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from ..base import Outcome, Tool, ToolContext, ToolError, sync_tool
from ..timers import Timers, describe_duration
from ..words import plain

__all__ = ["parse_duration", "tools"]

_UNITS = {"h": 3600, "m": 60, "s": 1}
_PART = re.compile(
    r"(?P<n>\d+(?:\.\d+)?|an?|one|half an?)\s*(?P<unit>hours?|hrs?|minutes?|mins?|seconds?|secs?)"
    r"(?P<half> and a half)?"
)
_MAX_S = 7 * 24 * 3600


def parse_duration(text: str) -> float | None:
    """Seconds in "10 minutes", "an hour and a half", "1 hour 30 minutes" (None: none)."""
    total = 0.0
    found = False
    for m in _PART.finditer(text):
        found = True
        n = m["n"]
        count = 0.5 if n.startswith("half") else 1.0 if n in ("a", "an", "one") else float(n)
        if m["half"]:
            count += 0.5
        total += count * _UNITS[m["unit"][0]]
    return total if found and total > 0 else None


_SET = re.compile(
    r"^(?:hey |okay |ok |please |can you |could you |would you )*"
    r"(?:set|start|make|put on|create)(?: me)? (?:a |an |the )?(?P<rest>.*\btimer\b.*)$"
    r"|^(?:hey |okay |ok )*(?P<rest2>(?:an? )?.*\btimer (?:for|of) .+)$"
)
_REMIND = re.compile(r"^(?:hey |okay |ok |please )*remind me in (?P<rest>.+)$")
_ALARM = re.compile(
    r"^(?:hey |okay |ok |please |can you |could you )*(?:set (?:an |the |my )?alarm (?:for|at)"
    r"|wake me(?: up)? at) (?P<at>.+)$"
)
_LIST = re.compile(
    r"^(?:hey |okay |ok )*(?:what timers?(?: do i have| are (?:set|running))"
    r"|(?:list|show)(?: me)? (?:my |the |all )?(?:timers?|alarms?)"
    r"|how (?:much time|long) is left(?: on (?:my |the )?(?P<label>[\w ]*)timer)?"
    r"|(?:do i have|are there) any timers?(?: set| running)?)$"
)
_CANCEL = re.compile(
    r"^(?:hey |okay |ok |please )*(?:cancel|stop|delete|clear|turn off) "
    r"(?P<all>all )?(?:(?:my |the |that |this )?(?P<label>[\w ]*?)\s*)(?:timers?|alarms?)$"
)
_LABEL = re.compile(r"\b(?:timer |)(?:for (?:the |my )?|called )(?P<label>[a-z][\w ]*)$")
_CLOCK = re.compile(r"(?P<h>\d{1,2})(?:[:. ](?P<m>\d{2}))?\s*(?P<ampm>a\.?m\.?|p\.?m\.?)?")


def _match_set(text: str) -> dict[str, Any] | None:
    request = plain(text)
    m = _SET.match(request) or _REMIND.match(request)
    if m is None:
        return None
    rest = m["rest"] or m.groupdict().get("rest2") or ""
    seconds = parse_duration(rest)
    if seconds is None:
        return None
    arguments: dict[str, Any] = {"seconds": seconds}
    words = _PART.sub("", rest)
    label = _LABEL.search(words.replace("timer", "").strip())
    if label and not re.fullmatch(r"\s*", label["label"]):
        arguments["label"] = label["label"].strip()
    elif m.re is _REMIND:
        to = re.search(r"\bto (?P<what>.+)$", rest)
        if to:
            arguments["label"] = to["what"]
    return arguments


def _match_alarm(text: str) -> dict[str, Any] | None:
    m = _ALARM.match(plain(text))
    if m is None:
        return None
    clock = _CLOCK.search(m["at"])
    if clock is None:
        return None
    hour, minute = int(clock["h"]), int(clock["m"] or 0)
    ampm = (clock["ampm"] or "").replace(".", "")
    if ampm == "pm" and hour < 12:
        hour += 12
    elif ampm == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        return None
    return {"time": f"{hour:02d}:{minute:02d}"}


def _match_list(text: str) -> dict[str, Any] | None:
    m = _LIST.match(plain(text))
    if m is None:
        return None
    return {"label": m["label"].strip()} if m["label"] and m["label"].strip() else {}


def _match_cancel(text: str) -> dict[str, Any] | None:
    m = _CANCEL.match(plain(text))
    if m is None:
        return None
    arguments: dict[str, Any] = {}
    if m["all"]:
        arguments["all"] = True
    if m["label"].strip():
        arguments["label"] = m["label"].strip()
    return arguments


def _timers(context: ToolContext) -> Timers:
    if context.timers is None:
        raise ToolError("timers ring only in a live conversation (voicegrok talk or ui)")
    return context.timers


def _set(context: ToolContext, arguments: dict[str, Any]) -> Outcome:
    try:
        seconds = float(arguments.get("seconds", 0))
    except (TypeError, ValueError):
        raise ToolError("the timer's length must be a number of seconds") from None
    if not 0 < seconds <= _MAX_S:
        raise ToolError("a timer can be set for up to a week")
    try:
        timer = _timers(context).add(seconds, str(arguments.get("label") or "").strip())
    except ValueError as e:
        raise ToolError(str(e)) from None
    length = describe_duration(seconds)
    what = f" for {timer.label}" if timer.label else ""
    return Outcome(
        f"timer {timer.id} set: {length}{what}", say=f"OK, {length}{what}, starting now."
    )


def _alarm(context: ToolContext, arguments: dict[str, Any]) -> Outcome:
    at = re.fullmatch(r"(\d{1,2}):(\d{2})", str(arguments.get("time", "")).strip())
    if at is None or int(at[1]) > 23 or int(at[2]) > 59:
        raise ToolError("give the alarm's time as HH:MM (24-hour)")
    now = context.now()
    ring = now.replace(hour=int(at[1]), minute=int(at[2]), second=0, microsecond=0)
    if ring <= now:
        ring += timedelta(days=1)
    said = _said_time(ring)
    label = str(arguments.get("label") or "").strip()
    try:
        _timers(context).add((ring - now).total_seconds(), label, alarm=said)
    except ValueError as e:
        raise ToolError(str(e)) from None
    day = "today" if ring.date() == now.date() else "tomorrow"
    return Outcome(
        f"alarm set for {ring.isoformat(timespec='minutes')}", say=f"Alarm set for {said} {day}."
    )


def _said_time(moment: datetime) -> str:
    return (
        moment.strftime("%-I:%M %p").replace(":00", "").replace("AM", "a.m.").replace("PM", "p.m.")
    )


def _list(context: ToolContext, arguments: dict[str, Any]) -> Outcome:
    timers = _timers(context)
    pending = timers.pending()
    label = str(arguments.get("label") or "").strip()
    if label:
        pending = [t for t in pending if label.lower() in t.name().lower()] or pending
    if not pending:
        return Outcome("no timers are set", say="You have no timers set.")
    rows = [f"{t.name()}: {describe_duration(_rounded(timers.left_s(t)))} left" for t in pending]
    spoken = "; ".join(rows)
    return Outcome("\n".join(rows), say=f"{spoken[0].upper()}{spoken[1:]}.")


def _rounded(seconds: float) -> float:
    """Time left as said: whole minutes past two minutes."""
    return seconds if seconds < 120 else round(seconds / 60) * 60


def _cancel(context: ToolContext, arguments: dict[str, Any]) -> Outcome:
    timers = _timers(context)
    label = str(arguments.get("label") or "").strip()
    if label in ("timer", "alarm"):
        label = ""
    cancelled = timers.cancel(label, every=bool(arguments.get("all")))
    if not cancelled:
        if not timers.pending():
            return Outcome("no timers are set", say="You have no timers set.")
        raise ToolError("several timers are set; say which one, or cancel all of them")
    names = " and ".join(t.name() for t in cancelled)
    return Outcome(f"cancelled: {names}", say=f"OK, I cancelled your {names}.")


def tools(context: ToolContext) -> list[Tool]:
    label = {"type": "string", "description": "what it is for, e.g. pasta"}
    return [
        sync_tool(
            "set_timer",
            "Start a countdown timer; its alert is spoken when it is done.",
            {
                "type": "object",
                "properties": {"seconds": {"type": "number"}, "label": label},
                "required": ["seconds"],
            },
            lambda a: _set(context, a),
            _match_set,
            acts=True,
        ),
        sync_tool(
            "set_alarm",
            "Set an alarm for a time of day (24-hour HH:MM, today or else tomorrow).",
            {
                "type": "object",
                "properties": {
                    "time": {"type": "string", "pattern": "^[0-2]?[0-9]:[0-5][0-9]$"},
                    "label": label,
                },
                "required": ["time"],
            },
            lambda a: _alarm(context, a),
            _match_alarm,
            acts=True,
        ),
        sync_tool(
            "list_timers",
            "The timers and alarms that are set, with the time left on each.",
            {"type": "object", "properties": {"label": label}},
            lambda a: _list(context, a),
            _match_list,
        ),
        sync_tool(
            "cancel_timer",
            "Cancel a timer or alarm (by its label), or all of them.",
            {"type": "object", "properties": {"label": label, "all": {"type": "boolean"}}},
            lambda a: _cancel(context, a),
            _match_cancel,
            acts=True,
        ),
    ]
