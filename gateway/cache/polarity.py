"""Polarity by word form: negating affixes and degrees of comparison.

An embedding hardly tells "safe" from "unsafe", "wired" from "wireless" or "healthier"
from "less healthy". No word list can name every such pair, so these rules work by
family, on the pair of prompts together:

- A negating affix (non-, un-, in-/im-/il-/ir-, dis-, anti-, -less) counts as a negation
  when the word without it is a word of the other prompt ("unsafe" against "safe",
  "wireless" against "wired", "careless" against "careful"), and a standalone "non" or
  "anti" ("non-profit", "anti-inflammatory") always does. The negation guard then
  compares the totals: "unsafe" and "not safe" agree, "safe" and "unsafe" do not.
- A degree is what a comparative or superlative says of its root: "bigger" and "more
  expensive" are (root, +), "less healthy" (healthy, -), "biggest" (big, ++). Two prompts
  that grade the same root must grade it alike.

Pure functions; `gateway.cache.guards` calls them.
"""

from __future__ import annotations

from functools import lru_cache

NEGATING_PREFIXES = ("non", "anti", "un", "dis", "in", "im", "il", "ir")
STANDALONE_NEGATORS = frozenset({"non", "anti"})  # hyphenated: "non-profit" -> non, profit
MIN_ROOT = 3  # shorter remainders ("un" + "it") are coincidences, not roots
DEGREE_MARKS = {"more": "+", "most": "++", "less": "-", "least": "--", "fewer": "-"}


@lru_cache(maxsize=1 << 16)
def roots(word: str) -> frozenset[str]:
    """The word and its likely roots: inflections (-s, -es, -ies, -ed, -d, -ing) and the
    -ful / -er / -est of adjectives stripped ("careful" -> care, "bigger" -> big)."""
    forms = {word}
    for suffix, add in (
        ("s", ""), ("es", ""), ("ies", "y"), ("ed", ""), ("ed", "e"), ("d", ""), ("ful", ""),
        ("ing", ""), ("ing", "e"),
    ):  # fmt: skip
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_ROOT:
            forms.add(word[: -len(suffix)] + add)
    return frozenset(forms)


def _affix_roots(word: str) -> list[str]:
    """What remains of `word` without a negating affix ("unsafe" -> safe, "wireless" -> wire)."""
    found = [
        word[len(prefix) :].lstrip("-")
        for prefix in NEGATING_PREFIXES
        if word.startswith(prefix) and len(word) - len(prefix) >= MIN_ROOT
    ]
    if word.endswith("less") and len(word) - 4 >= MIN_ROOT:
        found.append(word[:-4])
    return found


def negates(word: str, other: str) -> bool:
    """Whether `word` is `other` with a negating affix ("unsafe", "safe")."""
    return any(roots(root) & roots(other) for root in _affix_roots(word))


def affix_negations(tokens: tuple[str, ...], other: tuple[str, ...]) -> int:
    """How many words of `tokens` negate by an affix a word of `other` (see the module)."""
    known = set().union(*(roots(t) for t in other)) if other else set()
    count = 0
    for i, token in enumerate(tokens):
        standalone = token in STANDALONE_NEGATORS and i + 1 < len(tokens)
        affixed = token not in other and any(roots(r) & known for r in _affix_roots(token))
        count += standalone or affixed
    return count


def _comparative_roots(word: str) -> tuple[set[str], str] | None:
    """(possible roots, degree) of an -er / -est adjective, else None."""
    for suffix, degree in (("est", "++"), ("er", "+")):
        if not word.endswith(suffix) or len(word) - len(suffix) < MIN_ROOT:
            continue
        stem = word[: -len(suffix)]
        options = {stem, stem + "e"}
        if stem.endswith("i"):
            options.add(stem[:-1] + "y")  # healthier -> healthy
        if len(stem) > 3 and stem[-1] == stem[-2]:
            options.add(stem[:-1])  # bigger -> big
        return options, degree
    return None


def degrees(tokens: tuple[str, ...]) -> dict[str, str]:
    """Root -> degree for every graded word: "more/less/most/least X", "Xer", "Xest"."""
    graded: dict[str, str] = {}
    for i, token in enumerate(tokens):
        mark = DEGREE_MARKS.get(token)
        if mark and i + 1 < len(tokens) and tokens[i + 1] not in ("than", "of"):
            graded[tokens[i + 1]] = mark
            continue
        comparative = _comparative_roots(token)
        if comparative is not None and (i == 0 or tokens[i - 1] not in DEGREE_MARKS):
            options, degree = comparative
            for root in options:
                graded.setdefault(root, degree)
    return graded


def degrees_agree(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """Roots graded in both prompts are graded alike ("healthier" vs "less healthy": no)."""
    graded_a, graded_b = degrees(a), degrees(b)
    return all(graded_b[root] == degree for root, degree in graded_a.items() if root in graded_b)
