"""The calculator: exact arithmetic on rationals (``0.1 + 0.2`` is 0.3), percentages,
powers and square roots, through simpleeval (no ``eval``: only the operators and
functions listed here exist, and powers are bounded)."""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction
from typing import Any

from ..base import Outcome, Tool, ToolContext, ToolError, sync_tool
from ..words import format_number, plain, spoken_number

__all__ = ["evaluate", "tools"]

_MAX_EXPONENT = 1000
_MAX_DIGITS = 400
_MAX_CHARS = 200

Number = Fraction | float


def _power(base: Number, exponent: Number) -> Number:
    size, power = abs(float(base)), abs(float(exponent))
    if power > _MAX_EXPONENT or (size > 1 and power * math.log10(size) > _MAX_DIGITS):
        raise ToolError("that number is too large to work out")
    if isinstance(exponent, Fraction) and exponent.denominator == 1:
        whole = exponent.numerator
        return base**whole if isinstance(base, Fraction) else float(base) ** whole
    if base < 0:
        raise ToolError("a negative number has no real root")
    root = _exact_root(base, exponent)
    return root if root is not None else float(base) ** float(exponent)


def _exact_root(base: Number, exponent: Number) -> Fraction | None:
    """``base ** exponent`` exactly when it is rational (``81 ** 0.5`` is 9)."""
    if not isinstance(base, Fraction) or not isinstance(exponent, Fraction):
        return None
    if exponent.numerator != 1 or exponent.denominator > 10:
        return None
    n = exponent.denominator
    roots = []
    for part in (base.numerator, base.denominator):
        r = round(part ** (1 / n))
        if r**n != part:
            return None
        roots.append(r)
    return Fraction(roots[0], roots[1])


def _sqrt(x: Number) -> Number:
    return _power(x, Fraction(1, 2))


def _divide(a: Number, b: Number) -> Number:
    if b == 0:
        raise ToolError("dividing by zero has no answer")
    return a / b


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression (``+ - * / ** %`` of a number: percent,
    ``sqrt()``, ``pi``), or ToolError."""
    from simpleeval import SimpleEval

    if len(expression) > _MAX_CHARS:
        raise ToolError("that expression is too long")
    text = expression.replace("×", "*").replace("÷", "/").replace("^", "**").replace("−", "-")
    text = re.sub(r"(\d)\s*%", r"(\1/100)", text)  # 15% -> (15/100)

    class Exact(SimpleEval):  # type: ignore[misc]
        def _eval_constant(self, node: ast.Constant) -> Any:
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ToolError(f"not a number: {node.value!r}")
            return Fraction(str(node.value))

    evaluator = Exact(
        operators={
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Div: _divide,
            ast.Pow: _power,
            ast.USub: lambda a: -a,
            ast.UAdd: lambda a: a,
        },
        functions={"sqrt": _sqrt},
        names={"pi": math.pi, "e": math.e},
    )
    try:
        value = evaluator.eval(text)
    except ToolError:
        raise
    except (SyntaxError, ValueError, TypeError, KeyError, ArithmeticError, Exception) as e:
        raise ToolError(f"cannot work out {expression!r} ({type(e).__name__})") from None
    if not isinstance(value, Fraction | float) or (
        isinstance(value, float) and not math.isfinite(value)
    ):
        raise ToolError(f"cannot work out {expression!r}")
    return value


# ---------------------------------------------------------------- spoken requests

_ASK = re.compile(
    r"^(?:(?:hey |ok |okay |so |and |please |quick question,? )*)"
    r"(?:what(?:'s| is| does| do you get for)?|whats|calculate|compute|work out|"
    r"how much (?:is|are|does)|tell me|(?:can|could) you (?:tell me|calculate|work out)"
    r"(?: what)?)\s+"
    r"(?P<expr>.+?)(?:\s+(?:equal|equals|make|come to|give me|please))?$"
)
_WORDS = [
    (r"\bmultiplied by\b|\btimes\b|(?<=\d)\s*x\s*(?=\d)|×", " * "),
    (r"\bdivided by\b|\bover\b|÷", " / "),
    (r"\bplus\b|\badded to\b", " + "),
    (r"\bminus\b|\btake away\b", " - "),
    (r"\bto the power of\b|\bto the\b|\braised to\b", " ** "),
    (r"\bsquared\b", " ** 2"),
    (r"\bcubed\b", " ** 3"),
    (r"\b(?:the )?square root of\s+(\d+(?:\.\d+)?)", r" sqrt(\1) "),
    (r"(\d+(?:\.\d+)?)\s*(?:%|percent|per cent) of\s+(\d+(?:\.\d+)?)", r" (\1/100*\2) "),
    (r"(\d+(?:\.\d+)?)\s*(?:%|percent|per cent)", r" (\1/100) "),
    (r"(?<=\d)(?:st|nd|rd|th) power\b", ""),
]
_EXPRESSION = re.compile(r"^[\d.\s+\-*/()]*(?:sqrt\([\d.]+\)[\d.\s+\-*/()]*)*$")
_OPERATOR = re.compile(r"[+\-*/]|sqrt")


def _match(text: str) -> dict[str, Any] | None:
    request = _ASK.match(plain(text))
    if request is None:
        return None
    phrase = re.sub(r"^(?:the )?(?:answer to |result of |value of )", "", request["expr"])
    expression = phrase
    for pattern, replacement in _WORDS:
        expression = re.sub(pattern, replacement, expression)
    expression = re.sub(r"\s+", " ", expression).strip()
    if not re.search(r"\d", expression) or not _OPERATOR.search(expression):
        return None
    if not _EXPRESSION.match(expression):
        return None
    return {"expression": expression, "spoken": phrase}


def _speakable(expression: str) -> str:
    words = {
        "**": " to the power of ",
        "*": " times ",
        "/": " divided by ",
        "+": " plus ",
        "%": " percent",
    }
    text = re.sub(r"(?<=\d)\s+x\s+(?=\d)", " times ", expression)
    for symbol, word in words.items():
        text = text.replace(symbol, word)
    text = re.sub(r"(?<=\S)\s*-\s*", " minus ", text)
    return re.sub(r"\s+", " ", text).strip()


def _calculate(arguments: dict[str, Any]) -> Outcome:
    expression = str(arguments.get("expression", "")).strip()
    if not expression:
        raise ToolError("no expression was given")
    value = evaluate(expression)
    exact = not isinstance(value, float) and (
        value.denominator == 1 or len(format_number(value, 14)) <= 12
    )
    spoken = _speakable(str(arguments.get("spoken") or expression))
    result = spoken_number(value if exact else round(float(value), 6))
    say = f"{spoken} is {'' if exact else 'about '}{result}."
    return Outcome(output=format_number(value), say=say[0].upper() + say[1:])


def tools(context: ToolContext) -> list[Tool]:
    return [
        sync_tool(
            "calculate",
            "Work out an arithmetic expression exactly: + - * / ** (power), % (percent), "
            "sqrt(). Use it for any arithmetic instead of working it out yourself.",
            {
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "e.g. 12 * 12, 15% * 80, sqrt(81), 2 ** 10",
                    }
                },
                "required": ["expression"],
            },
            _calculate,
            _match,
        )
    ]
