"""The built-in tools: what they answer, what they refuse, and which requests reach them
without the LLM."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta, timezone
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from voicegrok.frames import LLMDone, LLMToken, ToolUsed, UserText
from voicegrok.stages import LLMStage
from voicegrok.testing import FakeChat, run_stage
from voicegrok.threads import EngineThread
from voicegrok.tools import Toolbox, ToolCall, ToolError
from voicegrok.tools.base import ToolContext
from voicegrok.tools.builtin.calculator import evaluate
from voicegrok.tools.builtin.timers import parse_duration
from voicegrok.tools.timers import Timers

TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=timezone(timedelta(hours=1), "CET"))


class Clock:
    def __init__(self) -> None:
        self.now_s = 100.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def box(clock: Clock) -> Toolbox:
    return Toolbox.builtin(ToolContext(timers=Timers(clock), now=lambda: TUESDAY_NOON))


def ask(box: Toolbox, text: str) -> tuple[ToolCall | None, str]:
    """The call ``text`` routes to, and what is said."""
    call = box.route(text)
    if call is None:
        return None, ""
    return call, asyncio.run(box.call(call)).say


@pytest.mark.parametrize(
    ("request_", "said"),
    [
        ("What is 12 times 12?", "12 times 12 is 144."),
        ("What's twelve times twelve?", "12 times 12 is 144."),
        ("What is the square root of 81?", "The square root of 81 is 9."),
        ("What is 0.1 plus 0.2?", "0.1 plus 0.2 is 0.3."),
        ("What is 15% of 80?", "15 percent of 80 is 12."),
        ("How much is 19 times 23?", "19 times 23 is 437."),
        ("What is 2 to the power of 10?", "2 to the power of 10 is 1024."),
        ("What is 1 divided by 3?", "1 divided by 3 is about 0.333333."),
        ("What is 5 minus 8?", "5 minus 8 is minus 3."),
        ("Calculate 3.5 x 4.", "3.5 times 4 is 14."),
    ],
)
def test_spoken_arithmetic_is_worked_out_exactly(box: Toolbox, request_: str, said: str) -> None:
    call, answer = ask(box, request_)
    assert call is not None and call.name == "calculate"
    assert answer == said


def test_the_calculator_is_exact_and_refuses_what_is_not_arithmetic() -> None:
    assert evaluate("0.1 + 0.2") == Fraction(3, 10)
    assert evaluate("sqrt(2) ** 2") == pytest.approx(2.0)
    assert evaluate("(1/3) * 3") == 1
    for hostile in (
        "__import__('os').system('true')",
        "().__class__",
        "open('/etc/passwd')",
        "9 ** 9 ** 9",
        "10 ** 100000",
        "1 / 0",
        "'a' * 10",
        "x" * 300,
    ):
        with pytest.raises(ToolError):
            evaluate(hostile)


def test_the_clock_answers_in_the_local_time_zone(box: Toolbox) -> None:
    assert ask(box, "What time is it?")[1] == "It's 12:00 p.m."
    assert ask(box, "What's the date today?")[1] == "Today is Tuesday, December 1, 2026."
    assert ask(box, "What's the date on Friday in two weeks?")[1] == (
        "That's Friday, December 18, 2026."
    )
    assert ask(box, "What day will it be tomorrow?")[1] == (
        "Tomorrow is Wednesday, December 2, 2026."
    )
    assert ask(box, "What date is it in 10 days?")[1] == "That's Friday, December 11, 2026."


def test_units_convert_between_the_units_people_name(box: Toolbox) -> None:
    assert ask(box, "Convert 5 miles to kilometers.")[1] == "5 miles is about 8.05 kilometers."
    assert ask(box, "How many feet are in a mile?")[1] == "1 mile is 5280 feet."
    assert ask(box, "What is 30 celsius in fahrenheit?")[1] == (
        "30 degrees celsius is 86 degrees fahrenheit."
    )
    assert ask(box, "How many seconds are in a day?")[1] == "1 day is 86400 seconds."
    call = ToolCall("convert_units", {"value": 3, "from_unit": "kilograms", "to_unit": "liters"})
    outcome = asyncio.run(box.call(call))
    assert outcome.error and "cannot be converted" in outcome.output


def test_timers_are_set_listed_cancelled_and_come_due(box: Toolbox, clock: Clock) -> None:
    timers = box.context.timers
    assert timers is not None
    assert ask(box, "Set a timer for 10 minutes.")[1] == "OK, 10 minutes, starting now."
    assert (
        ask(box, "Set a 5 minute timer for pasta.")[1] == "OK, 5 minutes for pasta, starting now."
    )
    assert parse_duration("an hour and a half") == 5400
    clock.now_s += 60
    assert ask(box, "What timers do I have?")[1] == (
        "Pasta timer: 4 minutes left; 10-minute timer: 9 minutes left."
    )
    assert ask(box, "Cancel the pasta timer.")[1] == "OK, I cancelled your pasta timer."
    assert timers.due() == []
    clock.now_s += 540
    (rang,) = timers.due()
    assert rang.alert() == "Time's up! Your 10-minute timer is done."
    assert ask(box, "Cancel the timer.")[1] == "You have no timers set."
    assert ask(box, "Set an alarm for 7 am.")[1] == "Alarm set for 7 a.m. tomorrow."
    assert timers.next_due_s() == 19 * 3600


@pytest.mark.parametrize(
    "request_",
    [
        "What is the capital of France?",
        "What is the time complexity of quicksort?",
        "What's the best time to visit Japan?",
        "How many people live in Paris?",
        "What is love?",
        "Set the table for two.",
        "How long is a marathon?",
        "What day of the week is Christmas?",
        "Tell me a story about a timer.",
        "Put it in a table.",
        "Add a column with the approximate cost.",
        "What is 12 in Roman numerals?",
        "How many states are in the US?",
        "What is the square root of a negative number?",
        "Now do Atlanta too.",
        "Who invented the calculator?",
        "Convert this text to French.",
        "Why is the sky blue?",
        "What is a kilometer?",
        "How do I cancel my subscription?",
    ],
)
def test_other_requests_are_left_to_the_llm(box: Toolbox, request_: str) -> None:
    assert box.route(request_) is None


async def test_a_routed_request_is_answered_by_its_tool_not_the_llm() -> None:
    chat = FakeChat(replies=["It is a mathematical operation."])
    thread = EngineThread("llm")
    stage = LLMStage(chat, thread=thread, tools=Toolbox.builtin())
    out = await run_stage(stage, [UserText(turn_id=1, text="What is 12 times 12?")])
    thread.close()
    (used,) = [f for f in out if isinstance(f, ToolUsed)]
    assert (used.name, used.arguments, used.output) == (
        "calculate",
        '{"expression": "12 * 12", "spoken": "12 times 12"}',
        "144",
    )
    answer = "".join(f.text for f in out if isinstance(f, LLMToken))
    assert answer == "12 times 12 is 144."
    assert [f.text for f in out if isinstance(f, LLMDone)] == [answer]
    assert not chat.prompts
    assert [m["content"] for m in stage.conversation.turns] == ["What is 12 times 12?", answer]


async def test_an_assistant_with_timers_closes_at_once_after_one_is_cancelled() -> None:
    """A timer cancelled just before the assistant closes: the ringer's wait used to
    swallow its own cancellation (the event was set at the same moment), and closing the
    assistant then hung."""
    from voicegrok.assistant import Assistant
    from voicegrok.testing import fake_engines

    async with Assistant(fake_engines(), timers=Timers()) as assistant:
        timers = assistant.timers
        assert timers is not None
        timers.add(300, "pasta")
        await asyncio.sleep(0.05)  # the ringer waits for it
        assert timers.cancel("pasta")  # wakes the ringer, which is cancelled next
        closing = time.perf_counter()
        closed = asyncio.ensure_future(assistant.__aexit__(None, None, None))
        done, _ = await asyncio.wait({closed}, timeout=3)
    assert done and time.perf_counter() - closing < 1


async def test_an_alert_is_spoken_ahead_and_heard_at_its_second() -> None:
    """The voice may be busy with an answer when a timer rings: its alert is synthesized
    before its time, so it plays the moment the timer rings; a timer cancelled before
    then is forgotten with its speech."""
    from voicegrok.assistant import ALERT_AHEAD_S, Assistant
    from voicegrok.testing import FakeTTS, fake_engines

    tts = FakeTTS(delay_s=0.6)  # a slow voice
    async with Assistant(fake_engines(tts=tts), timers=Timers()) as assistant:
        timers = assistant.timers
        assert timers is not None
        timers.add(ALERT_AHEAD_S + 0.3, "eggs")
        timers.add(ALERT_AHEAD_S + 0.9, "tea")
        await asyncio.sleep(0.2)
        assert tts.spoken == []  # not yet
        await asyncio.sleep(0.4)
        assert "eggs" in " ".join(assistant._said_ahead)  # being spoken
        assert timers.cancel("eggs")
        alerts = assistant.alerts()
        text = await asyncio.wait_for(anext(alerts), timeout=3)
        assert "tea" in text
        rang = time.perf_counter()
        chunks = [pcm async for pcm in assistant.speak_alert(text)]
        assert chunks and time.perf_counter() - rang < 0.3  # it did not wait for the voice
        assert tts.spoken[-1] == text and tts.urgent == []
        assert not assistant._said_ahead  # the cancelled timer's speech is gone too


def test_the_tool_bench_scores_tool_arguments_and_answer() -> None:
    from voicegrok.bench.tool_cases import CASES, Case
    from voicegrok.bench.tools import score

    assert len([c for c in CASES if c.tool]) >= 50 and len([c for c in CASES if not c.tool]) >= 20
    case = Case("What is 12 times 12?", "calculate", {"expression": "12 * 12"}, ("144",))

    def used(name: str, arguments: str) -> ToolUsed:
        return ToolUsed(turn_id=1, name=name, arguments=arguments, output="")

    right = used("calculate", '{"expression": "12 * 12"}')
    assert score(case, [right], "12 times 12 is 144.") == {
        "tool": True,
        "arguments": True,
        "answer": True,
    }
    assert score(case, [right], "It is 140.")["answer"] is False
    assert score(case, [used("calculate", '{"expression": "12*13"}')], "144")["arguments"] is False
    assert score(case, [], "144") == {"tool": False, "arguments": False, "answer": True}
    none = Case("Who wrote Hamlet?", None)
    assert score(none, [], "Shakespeare.") == {"tool": True, "arguments": True, "answer": True}
    assert score(none, [right], "144")["tool"] is False


def test_voicegrok_bench_tools_reports_every_request(cli: Any, tmp_path: Path) -> None:
    """The bench as a user runs it (typed requests only, to keep CI short): a JSON report
    with the scores, the requests that went wrong, and each request counted once."""
    out = tmp_path / "tools.json"
    r = cli(
        "bench", "tools", "--tool-modes", "typed", "--max-tokens", "40", "--out", str(out), "-q"
    )
    assert r.code == 0, r.err
    report = json.loads(out.read_text())
    typed = report["typed"]
    assert typed["requests"] == typed["need_a_tool"]["n"] + typed["need_none"]["n"] >= 70
    assert set(typed["by_tool"]) >= {"calculate", "get_time", "convert_units", "set_timer", "none"}
    assert 0.0 <= typed["correct"] <= 1.0 and isinstance(typed["wrong"], list)
    assert "spoken" not in report
