"""Guards: answer-changing features two prompts must share before one's answer serves the other.

An embedding says two prompts are *about* the same thing; it barely notices that one asks
for 10 and the other for 100, for Celsius to Fahrenheit rather than back, for a poem
rather than an essay. Each guard extracts one kind of feature from both prompts and
reports whether they agree. The guards (name: the prompts must agree on):

- number: the numbers, digits or words ("three", "1,000", "2nd"), with their counts.
- unit: the units and currencies mentioned (grams, °F, dollars, daily -> day).
- entity: named things (capitalised words not starting a sentence, acronyms, iPhone-like
  words), each found as a word in the other prompt.
- content: the payload: quoted strings, code spans, URLs and text after "X:", each
  contained in the other prompt.
- negation: how many negations (not, never, n't, no, without, "fail to"; "or not" is none).
- antonym: the pole chosen on each scale both prompts use (enable/disable, near/far).
- direction: no two shared words trade places around the same words (km to miles / miles
  to km, the Earth orbits the Sun / the Sun orbits the Earth).
- format: the requested output form (JSON, a list, a poem, in French, one line).
- question: the kind of answer asked for (who, where, when, why, how many, yes/no).
- slot: no content word swapped for another in an otherwise identical sentence.

All functions are pure; `guard_failures` is the entry point.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from gateway.cache.lexicon import (
    AMBIGUOUS_UNITS,
    AUX,
    CONTRACTIONS,
    DIRECTION_MARKERS,
    FORMATS,
    HOW_TYPES,
    MIN_PAYLOAD_WORDS,
    MULTIPLIERS,
    NEGATIONS,
    NUMBER_WORDS,
    ORDINALS,
    PHRASAL,
    QUESTION_TYPES,
    SCALES,
    SCALES_OF_WORDS,
    STOPWORDS,
    UNITS,
)

_TOKEN = re.compile(r"[a-z0-9]+|[%$€£¥°]")
_DIGITS = re.compile(r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)((?:st|nd|rd|th)\b)?")
_QUOTED = re.compile(
    r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d|\u2018([^\u2019]+)\u2019"
    r"|(?<![\w])'([^']+)'(?![\w])|`+([^`]+)`+"
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+")
_AFTER_COLON = re.compile(r":\s+(.+)$", re.S)
_WORDS_CASED = re.compile(r"[A-Za-z][A-Za-z0-9+#.-]*[A-Za-z0-9+#]|[A-Za-z]")


@dataclass(frozen=True)
class Features:
    """The answer-changing features of one prompt (see the module docstring)."""

    tokens: tuple[str, ...]
    numbers: tuple[str, ...]
    units: frozenset[str]
    entities: frozenset[str]
    payloads: tuple[str, ...]
    negations: int
    poles: frozenset[tuple[str, str]]
    formats: frozenset[str]
    question: str
    joined: str  # " ".join(tokens) with spaces at both ends, for containment tests


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-case word tokens with contractions expanded ("doesn't" -> "does not")."""
    lowered = text.lower()
    for pattern, repl in CONTRACTIONS:
        lowered = pattern.sub(repl, lowered)
    lowered = lowered.replace("%", " percent ")
    return tuple(_TOKEN.findall(lowered))


@lru_cache(maxsize=1 << 16)
def _bases(token: str) -> tuple[str, ...]:
    """The token and its likely base forms (strip -s, -es, -ed, -ing)."""
    forms = [token]
    for suffix, add in (("s", ""), ("es", ""), ("ies", "y"), ("ed", ""), ("ed", "e"), ("d", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            forms.append(token[: -len(suffix)] + add)
    if token.endswith("ing") and len(token) > 5:
        forms += [token[:-3], token[:-3] + "e"]
    return tuple(forms)


def _lookup(token: str, table: dict[str, str]) -> str | None:
    return next((table[form] for form in _bases(token) if form in table), None)


@lru_cache(maxsize=1)
def _pole_table() -> dict[str, tuple[tuple[str, str], ...]]:
    table: dict[str, list[tuple[str, str]]] = {}
    for line in SCALES_OF_WORDS:
        scale, poles = line.split(":")
        for pole, words in zip("AB", poles.split("|"), strict=True):
            for word in words.split():
                table.setdefault(word, []).append((scale, pole))
    return {word: tuple(entries) for word, entries in table.items()}


def _join_phrasal(tokens: tuple[str, ...]) -> list[str]:
    """Glue "turn on", "log in", "sign out" into one word so the pole table can see them."""
    out: list[str] = []
    for token in tokens:
        if out and (out[-1], token) in PHRASAL:
            out[-1] = out[-1] + token
        else:
            out.append(token)
    return out


def _poles(tokens: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    table = _pole_table()
    found: set[tuple[str, str]] = set()
    for token in _join_phrasal(tokens):
        for form in _bases(token):
            if form in table:
                found.update(table[form])
                break
    return frozenset(found)


def _number_words(tokens: tuple[str, ...]) -> list[str]:
    """Values of spelled-out numbers: "twenty five" -> 25, "a hundred" -> 100, "third" -> #3."""
    values: list[str] = []
    run: list[int] = []
    for i, token in enumerate((*tokens, "")):
        if token in NUMBER_WORDS:
            run.append(NUMBER_WORDS[token])
            continue
        if token in SCALES and (run or (i and tokens[i - 1] == "a")):
            run.append(SCALES[token])
            continue
        if run and run != [1]:  # a lone "one" is a pronoun as often as a number
            values.append(str(_combine(run)))
        run = []
        if token in ORDINALS:
            values.append(f"#{ORDINALS[token]}")
        elif token in MULTIPLIERS:
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


def _numbers(text: str, tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Digits ("1,000" -> 1000, "2nd" -> #2) and spelled-out numbers, sorted."""
    found = [
        ("#" if ordinal else "") + n.replace(",", "")
        for n, ordinal in _DIGITS.findall(text.lower())
    ]
    return tuple(sorted(found + _number_words(tokens)))


def _units(text: str, tokens: tuple[str, ...]) -> frozenset[str]:
    found = {UNITS[c] for c in "%$€£¥" if c in text}
    for previous, token in zip(("", *tokens), tokens, strict=False):
        unit = _lookup(token, UNITS) if token not in AMBIGUOUS_UNITS else None
        if token in AMBIGUOUS_UNITS and (previous.isdigit() or previous == "°"):
            unit = UNITS[token]
        if unit:
            found.add(unit)
    for match in re.finditer(r"\d\s?(°?[a-zA-Z]{1,3})\b", text):  # "5kg", "100 °F"
        unit = UNITS.get(match.group(1).lower())
        if unit:
            found.add(unit)
    return frozenset(found)


def _starts_sentence(text: str, start: int) -> bool:
    i = start - 1
    while i >= 0 and text[i] in " \t\"'\u201c\u2018(":
        i -= 1
    return i < 0 or text[i] in ".!?:;\n\r"


def _entities(text: str) -> frozenset[str]:
    """Capitalised words not starting a sentence, acronyms, and mixed-case words (iPhone)."""
    found = set()
    for match in _WORDS_CASED.finditer(text):
        word = match.group()
        inner_caps = word[1:] != word[1:].lower()
        if word != "I" and (
            inner_caps or (word[0].isupper() and not _starts_sentence(text, match.start()))
        ):
            found.add(word.lower().strip(".-"))
    return frozenset(found)


def _payloads(text: str) -> tuple[str, ...]:
    raw = ["".join(groups) for groups in _QUOTED.findall(text)] + _URL.findall(text)
    colon = _AFTER_COLON.search(text)
    if colon and len(colon.group(1).split()) >= MIN_PAYLOAD_WORDS:
        raw.append(colon.group(1))
    return tuple(p for p in (" ".join(tokenize(r)) for r in raw) if p)


def _formats(tokens: tuple[str, ...]) -> frozenset[str]:
    """Output forms asked for; a leading "list" is the verb ("List the planets"), not a form."""
    first = 1 if tokens[:1] == ("please",) else 0
    skip = first + 1 if tokens[first : first + 1] == ("list",) else 0
    return frozenset(f for t in tokens[skip:] if (f := _lookup(t, FORMATS)))


def _question_type(tokens: tuple[str, ...]) -> str:
    """The kind of answer asked for: person, place, time, reason, quantity, how-X, yes/no, any."""
    for token, following in zip(tokens, (*tokens[1:], ""), strict=True):
        if token in QUESTION_TYPES:
            return QUESTION_TYPES[token]
        if token == "how":
            if following in AUX or following == "to":
                return "method"
            return HOW_TYPES.get(following, f"how-{following}")
        if token in ("what", "which"):
            return "any"
    return "yes/no" if tokens and tokens[0] in AUX else "any"


def features(text: str) -> Features:
    """Extract every feature the guards compare."""
    tokens = tokenize(text)
    negations = sum(any(f in NEGATIONS for f in _bases(t)) for t in tokens)
    negations -= f" {' '.join(tokens)} ".count(" or not ")
    return Features(
        tokens=tokens,
        numbers=_numbers(text, tokens),
        units=_units(text, tokens),
        entities=_entities(text),
        payloads=_payloads(text),
        negations=negations,
        poles=_poles(tokens),
        formats=_formats(tokens),
        question=_question_type(tokens),
        joined=f" {' '.join(tokens)} ",
    )


TEMPLATE_SHARE = 0.5  # two prompts sharing more than this share of tokens are "one sentence"
MAX_ORDER_WORDS = 40  # words compared by the direction guard (bounds its cost on long prompts)


def _content_words(tokens: tuple[str, ...]) -> list[str]:
    """Words that carry the topic: not stopwords, not negations (the negation guard's job)."""
    return [t for t in tokens if t not in STOPWORDS and not set(_bases(t)) & NEGATIONS]


def _same_stem(x: str, y: str) -> bool:
    """Morphological variants ("eating"/"eat", "dicts"/"dictionaries"), not synonyms."""
    if set(_bases(x)) & set(_bases(y)):
        return True
    common = next(
        (i for i, (p, q) in enumerate(zip(x, y, strict=False)) if p != q), min(len(x), len(y))
    )
    return common >= 4 and common >= 0.6 * min(len(x), len(y))


def agree_numbers(a: Features, b: Features) -> bool:
    """number: both prompts carry the same numbers, as many times each."""
    return a.numbers == b.numbers


def agree_units(a: Features, b: Features) -> bool:
    """unit: both prompts mention the same units and currencies."""
    return a.units == b.units


def agree_content(a: Features, b: Features) -> bool:
    """content: every quoted string, code span, URL or "X: payload" appears in the other."""
    return all(f" {p} " in b.joined for p in a.payloads) and all(
        f" {p} " in a.joined for p in b.payloads
    )


def agree_entities(a: Features, b: Features) -> bool:
    """entity: every named thing of one prompt is a word of the other."""
    return all(f" {' '.join(tokenize(e))} " in b.joined for e in a.entities) and all(
        f" {' '.join(tokenize(e))} " in a.joined for e in b.entities
    )


def agree_negation(a: Features, b: Features) -> bool:
    """negation: both prompts negate as many times."""
    return a.negations == b.negations


def agree_antonyms(a: Features, b: Features) -> bool:
    """antonym: on every scale both prompts use, they choose the same poles."""
    scales = {scale for scale, _ in a.poles} & {scale for scale, _ in b.poles}
    return all(
        {p for s, p in a.poles if s == scale} == {p for s, p in b.poles if s == scale}
        for scale in scales
    )


def agree_direction(a: Features, b: Features) -> bool:
    """direction: no two shared words trade places around the same words ("X to Y"/"Y to X")."""
    stems_a, stems_b = [_stem(t) for t in a.tokens], [_stem(t) for t in b.tokens]
    pos_a, pos_b = _unique_positions(stems_a), _unique_positions(stems_b)
    shared = [w for w in pos_a if w in pos_b][:MAX_ORDER_WORDS]
    for i, x in enumerate(shared):
        for y in shared[i + 1 :]:
            (ax, ay), (bx, by) = (pos_a[x], pos_a[y]), (pos_b[x], pos_b[y])
            if (ax < ay) == (bx < by):
                continue
            between_a = _frame(stems_a[min(ax, ay) + 1 : max(ax, ay)])
            if between_a and between_a == _frame(stems_b[min(bx, by) + 1 : max(bx, by)]):
                return False
    return True


def _stem(token: str) -> str:
    return (
        token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token
    )


def _unique_positions(tokens: list[str]) -> dict[str, int]:
    counts = Counter(tokens)
    return {t: i for i, t in enumerate(tokens) if counts[t] == 1 and t not in STOPWORDS}


def _frame(tokens: list[str]) -> list[str]:
    """The words that relate two others: content words and direction markers ("orbit", "to")."""
    return [t for t in tokens if t not in STOPWORDS or t in DIRECTION_MARKERS]


def agree_format(a: Features, b: Features) -> bool:
    """format: both prompts ask for the same output forms (JSON, list, poem, French, line)."""
    return a.formats == b.formats


def agree_question(a: Features, b: Features) -> bool:
    """question: both ask for the same kind of answer ("what"/"which" fit any kind)."""
    return a.question == b.question or "any" in (a.question, b.question)


def agree_slots(a: Features, b: Features) -> bool:
    """slot: in an otherwise identical sentence, no content word is replaced by another."""
    matcher = SequenceMatcher(a=a.tokens, b=b.tokens, autojunk=False)
    shared = sum(block.size for block in matcher.get_matching_blocks())
    if shared <= TEMPLATE_SHARE * max(len(a.tokens), len(b.tokens)):
        return True
    words_a, words_b = set(a.tokens), set(b.tokens)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op != "replace":
            continue
        old = [w for w in _content_words(a.tokens[i1:i2]) if w not in words_b]  # not moved
        new = [w for w in _content_words(b.tokens[j1:j2]) if w not in words_a]
        if old and new and not all(any(_equivalent(x, y) for y in new) for x in old):
            return False
    return True


def _equivalent(x: str, y: str) -> bool:
    """Same stem ("dicts"), pole ("tallest"/"highest"), unit ("km"/"kilometers") or number."""
    unit = _lookup(x, UNITS)
    return (
        _same_stem(x, y)
        or bool(_poles((x,)) & _poles((y,)))
        or (unit is not None and unit == _lookup(y, UNITS))
        or (bool(_numbers(x, (x,))) and _numbers(x, (x,)) == _numbers(y, (y,)))
    )


GUARDS: tuple[tuple[str, Callable[[Features, Features], bool]], ...] = (
    ("number", agree_numbers),
    ("unit", agree_units),
    ("content", agree_content),
    ("entity", agree_entities),
    ("negation", agree_negation),
    ("antonym", agree_antonyms),
    ("direction", agree_direction),
    ("format", agree_format),
    ("question", agree_question),
    ("slot", agree_slots),
)


def guard_failures(cached: str, new: str) -> list[str]:
    """Names of the guards on which the two prompts disagree, in GUARDS order; [] = agree."""
    a, b = features(cached), features(new)
    return [name for name, agree in GUARDS if not agree(a, b)]
