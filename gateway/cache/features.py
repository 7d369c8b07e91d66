"""The answer-changing features of one prompt, read once and compared by the guards.

`features(text)` is kept for short texts: the cached side of a comparison is read once,
not once per lookup that meets it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from gateway.cache.lexicon import (
    AMBIGUOUS_UNITS,
    AUX,
    CONTRACTIONS,
    FORMATS,
    HOW_TYPES,
    LENGTH_FORMATS,
    MIN_PAYLOAD_WORDS,
    NAME_ALIASES,
    NEGATIONS,
    NUMBER_WORDS,
    PHRASAL,
    QUESTION_TYPES,
    SCALES_OF_WORDS,
    TIME_UNITS,
    UNITS,
)
from gateway.cache.numbers import numbers

_TOKEN = re.compile(r"\d+(?:\.\d+)+|[a-z0-9]+|[%$€£¥°]")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_QUOTED = re.compile(
    r"\"([^\"]+)\"|\u201c([^\u201d]+)\u201d|\u2018([^\u2019]+)\u2019"
    r"|(?<![\w])'([^']+)'(?![\w])|`+([^`]+)`+"
)
_URL = re.compile(r"\b(?:https?://|www\.)\S+")
_AFTER_COLON = re.compile(r":\s+(.+)$", re.S)
_WORDS_CASED = re.compile(r"[A-Za-z][A-Za-z0-9+#.-]*[A-Za-z0-9+#]|[A-Za-z]")
# code identifiers: dotted or :: paths, snake_case, camelCase ("os.path.join", "read_csv")
_IDENTIFIER = re.compile(r"\b[A-Za-z_]\w*(?:(?:\.|::)[A-Za-z_]\w*)+|\b\w*_\w+|\b[a-z]{2,}[A-Z]\w*")
_ALIASES = tuple((name, re.compile(pattern)) for name, pattern in NAME_ALIASES)
MAX_FEATURE_TEXTS = 4096  # texts whose features are kept (the cached side repeats) ...
MAX_REMEMBERED_CHARS = 1024  # ... when short: 4096 of them hold a few MiB at most


@dataclass(frozen=True)
class Features:
    """The answer-changing features of one prompt (see gateway.cache.guards)."""

    tokens: tuple[str, ...]
    numbers: tuple[str, ...]
    units: frozenset[str]
    entities: frozenset[str]
    identifiers: frozenset[str]
    payloads: tuple[str, ...]
    negations: int
    poles: frozenset[tuple[str, str]]
    formats: frozenset[str]
    question: str
    joined: str  # " ".join(tokens) with spaces at both ends, for containment tests


def tokenize(text: str) -> tuple[str, ...]:
    """Lower-case word tokens with contractions expanded ("doesn't" -> "does not"),
    thousands separators dropped ("1,000" -> 1000) and decimals kept whole ("3.11")."""
    lowered = _THOUSANDS.sub("", text.lower())
    for pattern, repl in CONTRACTIONS:
        lowered = pattern.sub(repl, lowered)
    lowered = lowered.replace("%", " percent ")
    return tuple(_TOKEN.findall(lowered))


@lru_cache(maxsize=1 << 16)
def bases(token: str) -> tuple[str, ...]:
    """The token and its likely base forms (strip -s, -es, -ed, -ing)."""
    forms = [token]
    for suffix, add in (("s", ""), ("es", ""), ("ies", "y"), ("ed", ""), ("ed", "e"), ("d", "")):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            forms.append(token[: -len(suffix)] + add)
    if token.endswith("ing") and len(token) > 5:
        forms += [token[:-3], token[:-3] + "e"]
    return tuple(forms)


def lookup(token: str, table: dict[str, str]) -> str | None:
    return next((table[form] for form in bases(token) if form in table), None)


@lru_cache(maxsize=1)
def _pole_table() -> dict[str, tuple[tuple[str, str], ...]]:
    table: dict[str, list[tuple[str, str]]] = {}
    for line in SCALES_OF_WORDS:
        scale, poles = line.split(":")
        for pole, pole_words in enumerate(poles.split("|")):
            for word in pole_words.split():
                table.setdefault(word, []).append((scale, str(pole)))
    return {word: tuple(entries) for word, entries in table.items()}


def join_phrasal(tokens: tuple[str, ...]) -> list[str]:
    """Glue "turn on", "log in", "every other" into one word for the pole table."""
    out: list[str] = []
    for token in tokens:
        if out and (out[-1], token) in PHRASAL:
            out[-1] = out[-1] + token
        else:
            out.append(token)
    return out


def poles(tokens: tuple[str, ...]) -> frozenset[tuple[str, str]]:
    """(scale, pole) of each scale word; a two-pole word right after a negation ("not
    safe") counts as the other pole ("unsafe")."""
    table = _pole_table()
    found: set[tuple[str, str]] = set()
    joined = join_phrasal(tokens)
    for i, token in enumerate(joined):
        negated = i > 0 and joined[i - 1] in NEGATIONS and joined[i - 2 : i] != ["or", "not"]
        for form in bases(token):
            if form in table:
                found.update(_flip(entry) if negated else entry for entry in table[form])
                break
    return frozenset(found)


def _flip(entry: tuple[str, str]) -> tuple[str, str]:
    scale, pole = entry
    two_poles = next(line for line in SCALES_OF_WORDS if line.startswith(f"{scale}:"))
    if two_poles.count("|") != 1:
        return entry
    return scale, "1" if pole == "0" else "0"


def _units(text: str, tokens: tuple[str, ...]) -> frozenset[str]:
    """Units and currencies; a time unit asked about ("what year", "how many hours") or
    an age ("5 years old") is the question's kind, not a unit."""
    found = {UNITS[c] for c in "%$€£¥" if c in text}
    padded = ("", *tokens, "")
    for i, token in enumerate(tokens):
        previous, following = padded[i], padded[i + 2]
        unit = lookup(token, UNITS) if token not in AMBIGUOUS_UNITS else None
        if token in AMBIGUOUS_UNITS and (previous[:1].isdigit() or previous == "°"):
            unit = UNITS[token]
        if unit in TIME_UNITS and (previous in ("what", "which", "many") or following == "old"):
            continue
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
    """Capitalised words not starting a sentence, acronyms, and mixed-case words (iPhone);
    units and formats (MB, USD, JSON, French) are left to their own guards."""
    found = set()
    for match in _WORDS_CASED.finditer(text):
        word = match.group()
        inner_caps = word[1:] != word[1:].lower()
        if word != "I" and (
            inner_caps or (word[0].isupper() and not _starts_sentence(text, match.start()))
        ):
            name = word.lower().strip(".-")
            if name not in UNITS and name not in FORMATS:
                found.add(name)
    return frozenset(found)


def _identifiers(text: str) -> frozenset[str]:
    """Code identifiers, lower-cased, without call parentheses; "e.g." and "U.S." are none."""
    found = set()
    for match in _IDENTIFIER.finditer(text):
        name = match.group().lower().strip("._")
        parts = re.split(r"\.|::", name)
        if name and (len(parts) == 1 or max(len(p) for p in parts) > 2):
            found.add(match.group().lower())
    return frozenset(found)


def _payloads(text: str) -> tuple[str, ...]:
    raw = ["".join(groups) for groups in _QUOTED.findall(text)] + _URL.findall(text)
    colon = _AFTER_COLON.search(text)
    if colon and len(colon.group(1).split()) >= MIN_PAYLOAD_WORDS:
        raw.append(colon.group(1))
    return tuple(p for p in (" ".join(tokenize(r)) for r in raw) if p)


def _formats(tokens: tuple[str, ...]) -> frozenset[str]:
    """Output forms asked for. A leading "list" is the verb ("List the planets"); a length
    ("sentence", "line") only counts after a count ("in one sentence", "3 lines")."""
    first = 1 if tokens[:1] == ("please",) else 0
    skip = first + 1 if tokens[first : first + 1] == ("list",) else 0
    found = set()
    for i in range(skip, len(tokens)):
        token = tokens[i]
        form = FORMATS.get(token) or (FORMATS.get(token[:-1]) if token.endswith("s") else None)
        if form in LENGTH_FORMATS and not _counted(tokens[i - 1] if i else ""):
            continue
        if form:
            found.add(form)
    return frozenset(found)


def _counted(previous: str) -> bool:
    return previous in NUMBER_WORDS or previous in ("a", "single") or previous[:1].isdigit()


def _question_type(tokens: tuple[str, ...]) -> str:
    """The kind of answer asked for: person, place, time, reason, quantity, how-X, yes/no, any."""
    padded = (*tokens, "", "")
    for i, token in enumerate(tokens):
        following = padded[i + 1]
        if token in QUESTION_TYPES:
            return QUESTION_TYPES[token]
        if token == "how":
            if following == "many" and lookup(padded[i + 2], UNITS) in TIME_UNITS:
                return "duration"  # "how many minutes" asks "how long"
            return HOW_TYPES.get(following, "method")
        if token in ("what", "which"):
            return "time" if following == "year" else "any"
    return "yes/no" if tokens and tokens[0] in AUX else "any"


def canonical_names(text: str) -> str:
    """One spelling per name: "the United States", "USA" and "U.S." become "US"."""
    for name, pattern in _ALIASES:
        text = pattern.sub(name, text)
    return text


def features(text: str) -> Features:
    """Extract every feature the guards compare (kept for short texts: the cached side of
    a comparison is read again by every lookup that meets it)."""
    return _remembered(text) if len(text) <= MAX_REMEMBERED_CHARS else _extract(text)


@lru_cache(maxsize=MAX_FEATURE_TEXTS)
def _remembered(text: str) -> Features:
    return _extract(text)


def _extract(text: str) -> Features:
    text = canonical_names(text)
    tokens = tokenize(text)
    negations = sum(any(f in NEGATIONS for f in bases(t)) for t in tokens)
    negations -= f" {' '.join(tokens)} ".count(" or not ")
    return Features(
        tokens=tokens,
        numbers=numbers(text, tokens),
        units=_units(text, tokens),
        entities=_entities(text),
        identifiers=_identifiers(text),
        payloads=_payloads(text),
        negations=negations,
        poles=poles(tokens),
        formats=_formats(tokens),
        question=_question_type(tokens),
        joined=f" {' '.join(tokens)} ",
    )
