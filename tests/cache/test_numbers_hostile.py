"""Hostile numbers in a prompt: the number guard never expands, overflows or conflates them.

Before: "1e999999999" built a billion-digit integer, and a 30-digit number made
Decimal.quantize raise (a 500 on a semantic lookup)."""

from __future__ import annotations

import pytest

from gateway.cache.numbers import digit_values


@pytest.mark.parametrize(
    "text",
    ["1e999999999", "9" * 100, "1" * 5000 + "k", "1e40 and 1e41", "-" + "7" * 60 + ".5"],
)
def test_huge_numbers_are_read_without_error(text: str) -> None:
    values = digit_values(text)
    assert values and all(len(v) < 6000 for v in values)


def test_long_numbers_that_differ_only_at_the_end_stay_apart() -> None:
    assert digit_values("9" * 99 + "8") != digit_values("9" * 100)
    assert digit_values("1" * 40 + "2") != digit_values("1" * 40 + "3")


@pytest.mark.parametrize(
    ("a", "b"),
    [("1e3", "1000"), ("1e20", "1" + "0" * 20), ("2k", "2000"), ("1.0", "1")],
)
def test_equal_values_still_agree(a: str, b: str) -> None:
    assert digit_values(a) == digit_values(b)
