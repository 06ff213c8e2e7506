"""The tool bench's requests: each with the tool it needs (or None), the arguments that
call must have, and what the answer must say. Written as people ask, not as the phrase
matchers expect; the clock is fixed (:data:`NOW`) so dates can be checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = ["CASES", "NOW", "Case"]

NOW = datetime(2026, 12, 1, 12, 0).astimezone()
"""Tuesday, December 1, 2026, noon, in the local time zone."""


@dataclass(frozen=True)
class Case:
    request: str
    tool: str | None
    arguments: dict[str, Any] = field(default_factory=dict)
    """What the call's arguments must include (numbers to within 0.1%)."""
    says: tuple[str, ...] = ()
    """What the answer must contain (case-insensitive)."""
    setup: tuple[str, ...] = ()
    """Requests made first, in the same conversation (the timers a list needs)."""

    @property
    def kind(self) -> str:
        return self.tool or "none"


def _calc(request: str, expression_value: str, *, says: str | None = None) -> Case:
    return Case(request, "calculate", {}, (says or expression_value,))


def _time(request: str, says: str, **arguments: Any) -> Case:
    return Case(request, "get_time", arguments, (says,))


def _date(request: str, says: str, **arguments: Any) -> Case:
    return Case(request, "get_date", arguments, (says,))


def _units(request: str, value: float, says: str) -> Case:
    return Case(request, "convert_units", {"value": value}, (says,))


PASTA = ("Set a 5 minute timer for pasta.",)

CASES: tuple[Case, ...] = (
    # ---------------------------------------------------------------- calculator (17)
    _calc("What is 12 times 12?", "144"),
    _calc("What's 15% of 80?", "12"),
    _calc("What is the square root of 81?", "9"),
    _calc("What is 0.1 plus 0.2?", "0.3"),
    _calc("How much is 19 times 23?", "437"),
    _calc("What is 2 to the power of 10?", "1024"),
    _calc("What is 1000 divided by 8?", "125"),
    _calc("What is 7 squared?", "49"),
    _calc("Calculate 3.5 times 4.", "14"),
    _calc("What is 250 minus 75?", "175"),
    _calc("What's 45 plus 38?", "83"),
    _calc("What's 20 percent of 150?", "30"),
    _calc("What is 9 cubed?", "729"),
    _calc("What is 144 divided by 12?", "12"),
    _calc("What's six times seven?", "42"),
    _calc("What is 1 divided by 4?", "0.25"),
    _calc("Can you work out 17 times 3?", "51"),
    # ---------------------------------------------------------------- clock (10)
    _time("What time is it?", "12:00", want="time"),
    _time("What's the time?", "12:00", want="time"),
    _time("What's the date today?", "December 1, 2026", want="date"),
    _time("What day is it today?", "Tuesday", want="date"),
    _date("What day will it be tomorrow?", "Wednesday, December 2", days_from_now=1),
    _date(
        "What's the date on Friday in two weeks?",
        "December 18",
        weeks_from_now=2,
        weekday="friday",
    ),
    _date("What date is it in 10 days?", "December 11", days_from_now=10),
    _date("What's the date next Monday?", "December 7", weekday="monday"),
    _date("What day of the week will it be in 3 days?", "Friday", days_from_now=3),
    _date("What's the date in three weeks?", "December 22", weeks_from_now=3),
    # ---------------------------------------------------------------- units (13)
    _units("Convert 5 miles to kilometers.", 5, "8.05"),
    _units("How many feet are in a mile?", 1, "5280"),
    _units("What is 100 degrees Fahrenheit in Celsius?", 100, "37.78"),
    _units("How many grams are in 3 pounds?", 3, "1360.78"),
    _units("What is 60 miles per hour in kilometers per hour?", 60, "96.56"),
    _units("Convert 2 cups to milliliters.", 2, "473.18"),
    _units("How many seconds are in a day?", 1, "86400"),
    _units("What is 30 degrees Celsius in Fahrenheit?", 30, "86"),
    _units("How many ounces are in a pound?", 1, "16"),
    _units("What is 10 kilograms in pounds?", 10, "22.05"),
    _units("How many inches are in a foot?", 1, "12"),
    _units("Convert 4 liters to gallons.", 4, "1.06"),
    _units("How many centimeters are in 2 meters?", 2, "200"),
    # ---------------------------------------------------------------- timers (13)
    Case("Set a timer for 10 minutes.", "set_timer", {"seconds": 600}, ("10 minutes",)),
    Case(PASTA[0], "set_timer", {"seconds": 300, "label": "pasta"}, ("pasta",)),
    Case("Start a timer for 30 seconds.", "set_timer", {"seconds": 30}, ("30 seconds",)),
    Case(
        "Remind me in 20 minutes to call mom.",
        "set_timer",
        {"seconds": 1200},
        ("20 minutes",),
    ),
    Case(
        "Set a timer for an hour and a half.",
        "set_timer",
        {"seconds": 5400},
        ("1 hour 30 minutes",),
    ),
    Case("Set a timer for 90 seconds.", "set_timer", {"seconds": 90}, ("1 minute 30",)),
    Case("Set a two minute timer.", "set_timer", {"seconds": 120}, ("2 minutes",)),
    Case("Set an alarm for 7 am.", "set_alarm", {"time": "07:00"}, ("7 a.m.",)),
    Case("Wake me up at 6:30 pm.", "set_alarm", {"time": "18:30"}, ("6:30 p.m.",)),
    Case("What timers do I have?", "list_timers", {}, ("pasta",), setup=PASTA),
    Case(
        "How much time is left on my pasta timer?",
        "list_timers",
        {"label": "pasta"},
        ("5 minutes",),
        setup=PASTA,
    ),
    Case("Cancel the pasta timer.", "cancel_timer", {"label": "pasta"}, ("cancelled",), PASTA),
    Case("Cancel all my timers.", "cancel_timer", {"all": True}, ("cancelled",), setup=PASTA),
    # ---------------------------------------------------------------- no tool (22)
    Case("What is the capital of France?", None),
    Case("Who wrote Hamlet?", None),
    Case("What's the best time to visit Japan?", None),
    Case("Tell me a joke.", None),
    Case("What is photosynthesis?", None),
    Case("How do I make pancakes?", None),
    Case("What is the time complexity of quicksort?", None),
    Case("Put it in a table.", None),
    Case("Now do Atlanta too.", None),
    Case("Tell me a story about a timer.", None),
    Case("Who invented the calculator?", None),
    Case("What is a kilometer?", None),
    Case("How many people live in Paris?", None),
    Case("Why is the sky blue?", None),
    Case("Set the table for two.", None),
    Case("What is love?", None),
    Case("How long is a marathon?", None),
    Case("Can you help me plan a trip to New York?", None),
    Case("What's your name?", None),
    Case("How do I cancel my gym membership?", None),
    Case("What happened in 1969?", None),
    Case("Is it a good time to buy a house?", None),
)
