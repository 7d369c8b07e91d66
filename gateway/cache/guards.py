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
- identifier: the code identifiers ("os.path.join", "read_csv", "useEffect").
- negation: how many negations (not, never, n't, no, without, "fail to"; "or not" is
  none), negating affixes included ("unsafe" against "safe": see gateway.cache.polarity).
- antonym: the pole chosen on each scale both prompts use (enable/disable, near/far,
  all/some/none, must/should/may, Monday/Tuesday, plus/minus); "not safe" is "unsafe".
- degree: a root graded in both prompts is graded alike ("healthier" / "less healthy").
- direction: no two shared words trade places around the same words (km to miles / miles
  to km, the Earth orbits the Sun / the Sun orbits the Earth).
- format: the requested output form (JSON, a list, a poem, in French, one line).
- question: the kind of answer asked for (who, where, when, why, how many, yes/no).
- slot: no content word swapped for another in an otherwise identical sentence, and no
  modifier slipped in before a shared word ("software engineer" / "senior software
  engineer").

The features are read by gateway.cache.features. All functions are pure;
`guard_failures` is the entry point.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from difflib import SequenceMatcher

from gateway.cache.features import (
    Features,
    bases,
    features,
    join_phrasal,
    lookup,
    poles,
    tokenize,
)
from gateway.cache.lexicon import (
    AMBIGUOUS_UNITS,
    DIRECTION_MARKERS,
    HOW_TYPES,
    NEGATIONS,
    STOPWORDS,
    SYNONYMS,
    UNITS,
)
from gateway.cache.numbers import is_numeric, numbers
from gateway.cache.polarity import (
    STANDALONE_NEGATORS,
    affix_negations,
    degrees,
    degrees_agree,
    negates,
)

__all__ = ["GUARDS", "Features", "features", "guard_failures", "tokenize"]

TEMPLATE_SHARE = 0.5  # two prompts sharing more than this share of tokens are "one sentence"
MAX_ORDER_WORDS = 40  # words compared by the direction guard (bounds its cost on long prompts)


def _content_words(tokens: tuple[str, ...]) -> list[str]:
    """Words that carry the topic: not stopwords, not negations (the negation guard's job),
    not numbers or their scale words (the number guard's), not units."""
    return [
        t
        for t in tokens
        if t not in STOPWORDS
        and t not in STANDALONE_NEGATORS
        and not set(bases(t)) & NEGATIONS
        and not is_numeric(t)
        and (t in AMBIGUOUS_UNITS or lookup(t, UNITS) is None)  # units: the unit guard's
    ]


def _same_stem(x: str, y: str) -> bool:
    """Morphological variants ("eating"/"eat", "dicts"/"dictionaries"), not synonyms."""
    if set(bases(x)) & set(bases(y)):
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
    """entity: every named thing of one prompt is a word of the other ("Monday" and
    "Mondays" are one)."""
    return _names_in(a.entities, b) and _names_in(b.entities, a)


def _names_in(names: frozenset[str], other: Features) -> bool:
    other_forms = {form for token in other.tokens for form in bases(token)}
    for name in names:
        words = tokenize(name)
        if len(words) == 1 and set(bases(words[0])) & other_forms:
            continue
        if f" {' '.join(words)} " not in other.joined:
            return False
    return True


def agree_identifiers(a: Features, b: Features) -> bool:
    """identifier: both prompts name the same code identifiers."""
    return {i.rstrip("()") for i in a.identifiers} == {i.rstrip("()") for i in b.identifiers}


def agree_negation(a: Features, b: Features) -> bool:
    """negation: both prompts negate as many times, by words and by affixes."""
    affixes_a = affix_negations(a.tokens, b.tokens)
    affixes_b = affix_negations(b.tokens, a.tokens)
    return a.negations + affixes_a == b.negations + affixes_b


def agree_degree(a: Features, b: Features) -> bool:
    """degree: a root graded in both prompts is graded alike ("healthier"/"less healthy")."""
    return degrees_agree(a.tokens, b.tokens)


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
            glued = _glued(x, pos_a, pos_b) | _glued(y, pos_a, pos_b)
            between_a = _frame(stems_a[min(ax, ay) + 1 : max(ax, ay)], glued)
            between_b = _frame(stems_b[min(bx, by) + 1 : max(bx, by)], glued)
            if between_a and between_a == between_b:
                return False
    return True


def _stem(token: str) -> str:
    return (
        token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token
    )


def _unique_positions(tokens: list[str]) -> dict[str, int]:
    counts = Counter(tokens)
    return {t: i for i, t in enumerate(tokens) if counts[t] == 1 and t not in STOPWORDS}


def _glued(word: str, pos_a: dict[str, int], pos_b: dict[str, int]) -> set[str]:
    """Shared words next to `word` in both prompts, on the same side: one name ("New York")."""
    return {
        other
        for other in pos_a.keys() & pos_b.keys()
        if abs(pos_a[other] - pos_a[word]) == 1
        and pos_a[other] - pos_a[word] == pos_b[other] - pos_b[word]
    }


def _frame(tokens: list[str], glued: set[str]) -> list[str]:
    """The words that relate two others: content words and direction markers ("orbit", "to"),
    not the words glued to them."""
    return [t for t in tokens if (t not in STOPWORDS or t in DIRECTION_MARKERS) and t not in glued]


def agree_format(a: Features, b: Features) -> bool:
    """format: both prompts ask for the same output forms (JSON, list, poem, French, line)."""
    return a.formats == b.formats


def agree_question(a: Features, b: Features) -> bool:
    """question: both ask for the same kind of answer ("what"/"which" fit any kind)."""
    return a.question == b.question or "any" in (a.question, b.question)


def agree_slots(a: Features, b: Features) -> bool:
    """slot: in an otherwise identical sentence, no content word is replaced by another,
    and no modifier is slipped in before a shared word ("senior software engineer")."""
    tokens_a, tokens_b = _slot_tokens(a.tokens), _slot_tokens(b.tokens)
    matcher = SequenceMatcher(a=tokens_a, b=tokens_b, autojunk=False)
    shared = sum(block.size for block in matcher.get_matching_blocks())
    if shared <= TEMPLATE_SHARE * max(len(tokens_a), len(tokens_b)):
        return True
    words_a, words_b = set(tokens_a), set(tokens_b)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old = [w for w in _content_words(tokens_a[i1:i2]) if w not in words_b]  # not moved
        new = [w for w in _content_words(tokens_b[j1:j2]) if w not in words_a]
        if op == "replace" and old and new:
            if not all(any(_equivalent(x, y) for y in new) for x in old):
                return False
        elif op in ("insert", "delete") and _slipped_in(tokens_a, tokens_b, (i1, i2, j1, j2)):
            return False
    return True


def _slot_tokens(tokens: tuple[str, ...]) -> tuple[str, ...]:
    """Phrasal verbs joined; "how long", "how many" leave their second word to the question
    guard."""
    joined = join_phrasal(tokens)
    return tuple(
        t for i, t in enumerate(joined) if not (i and joined[i - 1] == "how" and t in HOW_TYPES)
    )


def _slipped_in(
    tokens_a: tuple[str, ...], tokens_b: tuple[str, ...], span: tuple[int, int, int, int]
) -> bool:
    """Whether the words one prompt adds (an insert or delete opcode) modify a shared word."""
    i1, i2, j1, j2 = span
    if j2 > j1:
        return _modifies(tokens_b[j1:j2], tokens_b[j2 : j2 + 1], set(tokens_a))
    return _modifies(tokens_a[i1:i2], tokens_a[i2 : i2 + 1], set(tokens_b))


def _modifies(added: tuple[str, ...], following: tuple[str, ...], other_words: set[str]) -> bool:
    """A content word added right before a shared content word modifies it."""
    if not added or not following or not _content_words(added[-1:]):
        return False
    head = following[0]
    graded = bool(poles((head,))) or bool(degrees((head,)))  # "run faster": not a noun
    return head in other_words and bool(_content_words((head,))) and not graded


def _equivalent(x: str, y: str) -> bool:
    """Same stem ("dicts"), pole ("tallest"/"highest"), unit ("km"/"kilometers") or number."""
    unit = lookup(x, UNITS)
    return (
        _same_stem(x, y)
        or any(x in group and y in group for group in SYNONYMS)
        or negates(x, y)
        or negates(y, x)
        or bool(poles((x,)) & poles((y,)))
        or (unit is not None and unit == lookup(y, UNITS))
        or (bool(numbers(x, (x,))) and numbers(x, (x,)) == numbers(y, (y,)))
    )


GUARDS: tuple[tuple[str, Callable[[Features, Features], bool]], ...] = (
    ("number", agree_numbers),
    ("unit", agree_units),
    ("content", agree_content),
    ("entity", agree_entities),
    ("identifier", agree_identifiers),
    ("negation", agree_negation),
    ("antonym", agree_antonyms),
    ("degree", agree_degree),
    ("direction", agree_direction),
    ("format", agree_format),
    ("question", agree_question),
    ("slot", agree_slots),
)


def guard_failures(cached: str, new: str) -> list[str]:
    """Names of the guards on which the two prompts disagree, in GUARDS order; [] = agree."""
    a, b = features(cached), features(new)
    return [name for name, agree in GUARDS if not agree(a, b)]
