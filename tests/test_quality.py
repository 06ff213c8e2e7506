"""The quality bench's grading: an answer is right when it names an accepted answer as a
whole word (numbers as digits or words); the demo's table, cost column and Atlanta."""

from __future__ import annotations

from voicegrok.bench.qa_cases import QUESTIONS, grade_demo, is_right


def test_a_hundred_questions_of_every_kind() -> None:
    kinds = {q.kind for q in QUESTIONS}
    assert len(QUESTIONS) >= 100
    assert kinds == {"fact", "arithmetic", "dates", "units", "follow-up"}
    assert all(len(q.turns) >= 2 for q in QUESTIONS if q.kind == "follow-up")


def test_answers_are_graded_by_whole_words_and_numbers() -> None:
    assert is_right("There are seven continents.", ("7",))
    assert is_right("12 times 12 is 144.", ("144",))
    assert not is_right("It is 1440.", ("144",))
    assert not is_right("About 8.05 kilometers.", ("8",))
    assert is_right("Leonardo da Vinci painted it.", ("da Vinci",))
    assert not is_right("Paris is lovely; the capital is Lyon?", ("Rome",))
    assert is_right("It is 5,280 feet.", ("5280",))
    assert is_right("Water's chemical formula is H₂O.", ("H2O",))


def test_the_demo_needs_a_real_table_then_costs_then_atlanta() -> None:
    itinerary = "Day 1: the High Line. Day 2: Red Hook."
    table = "| Day | Plan |\n| --- | --- |\n| 1 | High Line |\n| 2 | Red Hook |"
    costs = (
        "| Day | Plan | Approximate cost |\n| --- | --- | --- |\n"
        "| 1 | High Line | Free ($0) |\n| 2 | Red Hook | $25 |"
    )
    assert grade_demo([itinerary, table, costs, "In Atlanta, try Cabbagetown."]) == {
        "table": True,
        "cost_column": True,
        "atlanta": True,
    }
    one_column = "| Plan |\n| --- |\n| High Line, Red Hook |"
    assert grade_demo([itinerary, one_column, table, "Atlanta"])["table"] is False
    assert grade_demo([itinerary, table, table, "Boston"]) == {
        "table": True,
        "cost_column": False,
        "atlanta": False,
    }
