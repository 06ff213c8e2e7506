"""The quality bench's questions, graded automatically: facts, arithmetic, dates, units,
follow-ups in one conversation, and the itinerary demo. A question's answer is right when
it names one of the accepted answers (as a whole word; numbers as digits or words)."""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DEMO_TURNS", "QUESTIONS", "Question", "grade_demo", "is_right"]


@dataclass(frozen=True)
class Question:
    turns: tuple[str, ...]
    """Asked in order in one conversation; the last answer is graded."""
    accept: tuple[str, ...]
    """Any of these, as whole words (case-insensitive)."""
    kind: str


def _q(kind: str, question: str, *accept: str) -> Question:
    return Question((question,), accept, kind)


def _chat(*turns: str, accept: tuple[str, ...]) -> Question:
    return Question(turns, accept, "follow-up")


_NUMBERS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
    "7": "seven", "8": "eight", "9": "nine", "10": "ten", "12": "twelve", "24": "twenty-four",
}  # fmt: skip


_SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")


def is_right(answer: str, accept: tuple[str, ...]) -> bool:
    text = answer.lower().replace(",", "").translate(_SUBSCRIPTS)  # H₂O
    for a in accept:
        forms = {a.lower(), _NUMBERS.get(a, a).lower()}
        if any(re.search(rf"(?<![\w.]){re.escape(f)}(?![\w]|\.\d)", text) for f in forms):
            return True
    return False


FACTS = [
    _q("fact", "What is the capital of France?", "Paris"),
    _q("fact", "What is the capital of Japan?", "Tokyo"),
    _q("fact", "What is the capital of Italy?", "Rome"),
    _q("fact", "What is the capital of Canada?", "Ottawa"),
    _q("fact", "What is the capital of Australia?", "Canberra"),
    _q("fact", "What is the capital of Germany?", "Berlin"),
    _q("fact", "What is the capital of Spain?", "Madrid"),
    _q("fact", "What is the capital of Egypt?", "Cairo"),
    _q("fact", "Who wrote Romeo and Juliet?", "Shakespeare"),
    _q("fact", "Who painted the Mona Lisa?", "Leonardo", "da Vinci"),
    _q("fact", "What is the largest planet in our solar system?", "Jupiter"),
    _q("fact", "Which planet is closest to the sun?", "Mercury"),
    _q("fact", "Which planet is known as the red planet?", "Mars"),
    _q("fact", "What is the largest ocean on Earth?", "Pacific"),
    _q("fact", "What is the chemical symbol for gold?", "Au"),
    _q("fact", "What is the chemical formula of water?", "H2O"),
    _q("fact", "At how many degrees Celsius does water freeze?", "0"),
    _q("fact", "At how many degrees Celsius does water boil at sea level?", "100"),
    _q("fact", "How many continents are there?", "7"),
    _q("fact", "How many legs does a spider have?", "8"),
    _q("fact", "How many days are in a leap year?", "366"),
    _q("fact", "Who was the first person to walk on the moon?", "Armstrong"),
    _q("fact", "Who discovered penicillin?", "Fleming"),
    _q("fact", "Who developed the theory of relativity?", "Einstein"),
    _q("fact", "What is the tallest mountain in the world?", "Everest"),
    _q("fact", "What is the largest country by area?", "Russia"),
    _q("fact", "What gas do plants absorb from the air?", "carbon dioxide", "CO2"),
    _q("fact", "What do bees make?", "honey"),
    _q("fact", "What is the largest mammal?", "blue whale"),
    _q("fact", "How many sides does a hexagon have?", "6"),
    _q("fact", "What currency is used in Japan?", "yen"),
    _q("fact", "In which country are the pyramids of Giza?", "Egypt"),
    _q("fact", "What is the hardest natural substance?", "diamond", "diamonds"),
    _q("fact", "Which organ pumps blood through the body?", "heart"),
    _q("fact", "What language is spoken in Brazil?", "Portuguese"),
    _q("fact", "Who was the first president of the United States?", "Washington"),
    _q("fact", "In what year did World War Two end?", "1945"),
    _q("fact", "How many strings does a standard guitar have?", "6"),
    _q("fact", "What color do you get when you mix blue and yellow?", "green"),
    _q("fact", "What is the fastest land animal?", "cheetah"),
    _q("fact", "What is the main language of Mexico?", "Spanish"),
    _q("fact", "What is the freezing point of water in Fahrenheit?", "32"),
    _q("fact", "Which animal is known as the king of the jungle?", "lion"),
    _q("fact", "What is the smallest prime number?", "2"),
    _q("fact", "Who wrote the Odyssey?", "Homer"),
    _q("fact", "What is the capital of the United Kingdom?", "London"),
    _q("fact", "How many players are on a soccer team on the field?", "11", "eleven"),
    _q("fact", "What is the boiling point of water in Fahrenheit?", "212"),
    _q("fact", "Which metal is liquid at room temperature?", "mercury"),
    _q("fact", "What is the largest desert in the world?", "Sahara", "Antarctic", "Antarctica"),
]
ARITHMETIC = [
    _q("arithmetic", "What is 12 times 12?", "144"),
    _q("arithmetic", "What is 15 percent of 80?", "12"),
    _q("arithmetic", "What is the square root of 81?", "9"),
    _q("arithmetic", "What is 7 times 8?", "56"),
    _q("arithmetic", "What is 100 divided by 4?", "25"),
    _q("arithmetic", "What is 250 minus 75?", "175"),
    _q("arithmetic", "What is 45 plus 38?", "83"),
    _q("arithmetic", "What is 2 to the power of 10?", "1024"),
    _q("arithmetic", "What is 9 squared?", "81"),
    _q("arithmetic", "What is 1000 divided by 8?", "125"),
    _q("arithmetic", "What is 19 times 23?", "437"),
    _q("arithmetic", "What is 3.5 times 4?", "14"),
    _q("arithmetic", "What is 20 percent of 150?", "30"),
    _q("arithmetic", "What is 6 times 7?", "42"),
    _q("arithmetic", "What is 144 divided by 12?", "12"),
    _q("arithmetic", "What is 999 plus 1?", "1000"),
    _q("arithmetic", "What is 5 cubed?", "125"),
    _q("arithmetic", "What is 81 minus 27?", "54"),
    _q("arithmetic", "What is half of 50?", "25"),
    _q("arithmetic", "What is 11 times 11?", "121"),
]
DATES = [
    _q("dates", "What day comes after Monday?", "Tuesday"),
    _q("dates", "How many days are in February in a leap year?", "29"),
    _q("dates", "What month comes after June?", "July"),
    _q("dates", "How many months are in a year?", "12"),
    _q("dates", "What is the first month of the year?", "January"),
    _q("dates", "How many days are in a normal year?", "365"),
    _q("dates", "How many hours are in a day?", "24"),
    _q("dates", "What day comes before Friday?", "Thursday"),
    _q("dates", "How many weeks are in a year?", "52", "52.1", "52.14", "52.18"),
    _q("dates", "Which season comes after winter?", "spring"),
]
UNITS = [
    _q("units", "How many centimeters are in a meter?", "100"),
    _q("units", "How many grams are in a kilogram?", "1000"),
    _q("units", "How many feet are in a mile?", "5280"),
    _q("units", "How many inches are in a foot?", "12"),
    _q("units", "How many meters are in a kilometer?", "1000"),
    _q("units", "How many ounces are in a pound?", "16"),
    _q("units", "How many milliliters are in a liter?", "1000"),
    _q("units", "How many seconds are in a minute?", "60"),
    _q("units", "Convert 5 miles to kilometers.", "8.05", "8.04672", "8.047", "8"),
    _q("units", "What is 100 degrees Fahrenheit in Celsius?", "37.78", "37.8", "37.7778", "38"),
]
FOLLOW_UPS = [
    _chat("What is the capital of France?", "And of Italy?", accept=("Rome",)),
    _chat("I have 3 apples.", "I buy 2 more. How many apples do I have now?", accept=("5",)),
    _chat("Who wrote Hamlet?", "What country was he from?", accept=("England", "English")),
    _chat("My name is Ana.", "What is my name?", accept=("Ana",)),
    _chat("What is 10 plus 5?", "Now multiply that by 2.", accept=("30",)),
    _chat("I live in Paris.", "In which country do I live?", accept=("France",)),
    _chat("What is the capital of Japan?", "What currency do they use there?", accept=("yen",)),
    _chat("Think of the number 7.", "Add 3 to it. What do you get?", accept=("10",)),
    _chat("My favorite color is blue.", "What is my favorite color?", accept=("blue",)),
    _chat("What is the largest planet?", "What is the second largest?", accept=("Saturn",)),
]
QUESTIONS: tuple[Question, ...] = (*FACTS, *ARITHMETIC, *DATES, *UNITS, *FOLLOW_UPS)

DEMO_TURNS = (
    "I'd like to visit New York City for two days, with things that are not typically "
    "touristy: can you make an itinerary?",
    "Put it in a table.",
    "Add a column with the approximate cost.",
    "Now do Atlanta too.",
)


def _table(answer: str) -> list[list[str]]:
    """The rows of the first Markdown table in ``answer`` (header first, no rule)."""
    rows = []
    for line in answer.splitlines():
        line = line.strip()
        if line.startswith("|") and line.count("|") >= 3:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c):
                rows.append(cells)
        elif rows:
            break
    return rows


def grade_demo(answers: list[str]) -> dict[str, bool]:
    """The demo's turns 2 to 4: a real table (one row per item, two columns or more); a
    cost column with amounts; Atlanta covered."""
    table = _table(answers[1]) if len(answers) > 1 else []
    costs = _table(answers[2]) if len(answers) > 2 else []
    header = [c.lower() for c in costs[0]] if costs else []
    column = next((i for i, c in enumerate(header) if "cost" in c or "price" in c), None)
    amounts = [
        r[column]
        for r in costs[1:]
        if column is not None and column < len(r) and re.search(r"\d", r[column])
    ]
    return {
        "table": len(table) >= 3 and all(len(r) >= 2 for r in table),
        "cost_column": column is not None and len(amounts) >= 2,
        "atlanta": len(answers) > 3 and "atlanta" in answers[3].lower(),
    }
