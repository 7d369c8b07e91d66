"""The numbers of a prompt as values, however they are written.

The number guard compares values, not spellings: "1,000", "1000", "1k", "1e3", "one
thousand" and "a thousand" are one value; "2 million" and "2 billion" are two, though
their digits agree, and so are "-5" and "5". Ordinals are marked ("2nd", "second" -> #2)
and multipliers kept apart ("twice" -> x2, "dozen" -> 12, "half" -> 1/2). A fraction of
zeros is no fraction ("1.0" is 1), but "3.10" stays "3.10": versions are numbers too.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from gateway.cache.lexicon import MULTIPLIERS, NUMBER_WORDS, ORDINALS, SCALES

_DIGITS = re.compile(
    r"(?<![\w.])(-)?"  # a sign, not a hyphen inside a word ("covid-19") or a range end
    r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
    r"(?:(e\d+)\b|((?:st|nd|rd|th)\b)|(k|K|M|bn)\b|\s?(hundred|thousand|million|billion|trillion)\b)?",
)
_SUFFIXES = {"k": 10**3, "K": 10**3, "M": 10**6, "bn": 10**9}
_NUMERIC_WORDS = frozenset([*NUMBER_WORDS, *SCALES, *ORDINALS, *MULTIPLIERS, "k", "bn"])


MAX_PLAIN_DIGITS = 24  # longer values are written in scientific form (bounded length)
MAX_EXPONENT_DIGITS = 6  # "1e999999999" is compared as written, never expanded


def canonical(value: Decimal) -> str:
    """The value as plain digits: 1500, 0.5, -5 (never 1.5E+3), unless it is too long to
    write out: then its normalised scientific form (1E+40), which still compares by value."""
    if not value.is_finite() or abs(value.adjusted()) > MAX_PLAIN_DIGITS:
        return str(value.normalize())
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def digit_values(text: str) -> list[str]:
    """Numbers written with digits, with their sign, exponent, ordinal or scale."""
    found = []
    for sign, digits, exponent, ordinal, suffix, scale in _DIGITS.findall(text):
        literal = digits.replace(",", "")
        if ordinal:
            found.append(f"#{literal}")
            continue
        multiplier = _SUFFIXES.get(suffix) or SCALES.get(scale.lower(), 1)
        if len(exponent) > MAX_EXPONENT_DIGITS + 1 or len(literal) > MAX_PLAIN_DIGITS:
            # Past exact decimal arithmetic: compared as written (two long numbers that
            # differ only in their last digits must never read as one value).
            found.append(("-" if sign else "") + literal + exponent + suffix + scale.lower())
            continue
        try:
            value = Decimal(literal) * multiplier
            if exponent:  # scaleb: no 10**n integer is ever built
                value = Decimal(literal).scaleb(int(exponent[1:]))
        except (InvalidOperation, ArithmeticError):
            continue
        if multiplier == 1 and "." in literal and value != value.to_integral_value():
            text_value = literal  # "3.10" is not "3.1" (a version), but "1.0" is "1"
        else:
            text_value = canonical(value)
        found.append(("-" if sign else "") + text_value)
    return found


def word_values(tokens: tuple[str, ...]) -> list[str]:
    """Spelled-out numbers: "twenty five" -> 25, "a hundred" -> 100, "two and a half" ->
    2.5, "third" -> #3. A scale word after digits belongs to `digit_values`."""
    values: list[str] = []
    run: list[int] = []
    padded = (*tokens, "", "", "")
    for i, token in enumerate((*tokens, "")):
        if token in NUMBER_WORDS:
            run.append(NUMBER_WORDS[token])
            continue
        after_digits = i > 0 and tokens[i - 1][:1].isdigit()
        if token in SCALES and not after_digits and (run or (i and tokens[i - 1] == "a")):
            run.append(SCALES[token])
            continue
        if run and run != [1]:  # a lone "one" is a pronoun as often as a number
            half = padded[i : i + 3] == ("and", "a", "half")
            values.append(canonical(Decimal(_combine(run)) + (Decimal("0.5") if half else 0)))
        elif run == [1] and padded[i : i + 3] == ("and", "a", "half"):
            values.append("1.5")
        run = []
        if token in ORDINALS:
            values.append(f"#{ORDINALS[token]}")
        elif token in MULTIPLIERS and not (
            token == "half" and tokens[max(i - 2, 0) : i] == ("and", "a")
        ):
            values.append(MULTIPLIERS[token])
    return values


def _combine(run: list[int]) -> int:
    total, current = 0, 0
    for value in run:
        if value >= 100:
            current = max(current, 1) * value
            if value >= 1000:
                total, current = total + current, 0
        else:
            current += value
    return total + current


def is_numeric(token: str) -> bool:
    """A number token or a word that only scales or counts ("1e6", "million", "k", "half")."""
    return token[:1].isdigit() or token in _NUMERIC_WORDS


def numbers(text: str, tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Every number of the prompt as a value, sorted."""
    return tuple(sorted(digit_values(text) + word_values(tokens)))
