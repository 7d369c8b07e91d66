"""The guards: each catches its kind of answer-changing edit and lets paraphrases through."""

from __future__ import annotations

import pytest

from gateway.cache.guards import GUARDS, features, guard_failures, tokenize


@pytest.mark.parametrize(
    ("guard", "cached", "new"),
    [
        ("number", "Convert 5 kilometers to miles.", "Convert 50 kilometers to miles."),
        ("number", "Give me three ideas for a party.", "Give me ten ideas for a party."),
        (
            "number",
            "Who was the first person on the moon?",
            "Who was the second person on the moon?",
        ),
        ("number", "What is the derivative of x^2?", "What is the derivative of x^3?"),
        ("number", "How many people lived in Tokyo?", "How many people lived in Tokyo in 1900?"),
        ("unit", "How many ounces are in a cup?", "How many ounces are in a gallon?"),
        (
            "unit",
            "How many calories should I eat per day?",
            "How many calories should I eat per week?",
        ),
        ("unit", "Convert $20 to yen.", "Convert €20 to yen."),
        ("entity", "What is the capital of Australia?", "What is the capital of Austria?"),
        ("entity", "Does vitamin C prevent colds?", "Does vitamin D prevent colds?"),
        ("entity", "Is the iPhone waterproof?", "Is the Pixel waterproof?"),
        (
            "content",
            "Translate 'good morning' into Spanish.",
            "Translate 'good night' into Spanish.",
        ),
        ("content", "Fix this: `x = 1 +`", "Fix this: `y = 2 *`"),
        ("content", "Summarize https://a.example/one", "Summarize https://a.example/two"),
        ("negation", "Is coffee bad for you?", "Is coffee not bad for you?"),
        ("negation", "What should I eat before a run?", "What shouldn't I eat before a run?"),
        ("negation", "Can I take ibuprofen with food?", "Can I take ibuprofen without food?"),
        ("negation", "What happens if I pay my taxes?", "What happens if I fail to pay my taxes?"),
        ("antonym", "How do I install numpy with pip?", "How do I uninstall numpy with pip?"),
        ("antonym", "Which is the largest ocean?", "Which is the smallest ocean?"),
        ("antonym", "What should I eat before a workout?", "What should I eat after a workout?"),
        (
            "antonym",
            "Should I turn on the heater at night?",
            "Should I turn off the heater at night?",
        ),
        ("direction", "Convert 5 kilometers to miles.", "Convert 5 miles to kilometers."),
        ("direction", "Is Rust faster than Go?", "Is Go faster than Rust?"),
        ("direction", "Does the Earth orbit the Sun?", "Does the Sun orbit the Earth?"),
        ("format", "List the planets in JSON.", "List the planets in YAML."),
        ("format", "Write a haiku about rain.", "Write a limerick about rain."),
        (
            "format",
            "Summarize the plot in three sentences.",
            "Summarize the plot in three paragraphs.",
        ),
        (
            "format",
            "Translate this to french: bonjour mon ami",
            "Translate this to german: bonjour mon ami",
        ),
        ("question", "Who wrote Hamlet?", "When was Hamlet written?"),
        ("question", "Why is the sky blue?", "Is the sky blue?"),
        ("question", "How do I reset my password?", "Why can I not reset my password?"),
        ("slot", "Can dogs eat grapes?", "Can cats eat grapes?"),
        ("slot", "What is the boiling point of water?", "What is the boiling point of ethanol?"),
        ("slot", "How do I center a div in CSS?", "How do I center text in CSS?"),
        (
            "slot",
            "What is the time complexity of binary search?",
            "What is the space complexity of binary search?",
        ),
    ],
)
def test_guard_catches_answer_changing_edit(guard: str, cached: str, new: str) -> None:
    assert guard in guard_failures(cached, new)
    assert guard in guard_failures(new, cached)  # symmetric


@pytest.mark.parametrize(
    ("cached", "new"),
    [
        ("How do I reset my password?", "How can I reset my password?"),
        ("Which city is the capital of Australia?", "What is the capital of Australia?"),
        ("How many ounces are in a cup?", "A cup is how many ounces?"),
        ("Is it safe to eat raw cookie dough?", "Is raw cookie dough safe to eat?"),
        ("Convert 5 kilometers to miles.", "How many miles is 5 km?"),
        ("What is 15% of 200?", "Calculate 15 percent of 200."),
        ("Give me a dozen ideas for a party.", "Give me 12 ideas for a party."),
        ("Is Python faster than Java?", "Does Python run faster than Java?"),
        ("Is it better to rent or buy a house?", "Is it better to buy or rent a house?"),
        ("Explain the difference between TCP and UDP.", "How is TCP different from UDP?"),
        ("Which is the largest ocean?", "Which ocean is the biggest?"),
        ("Do cats see in color?", "Can cats see colors?"),
        ("Why is the sky blue?", "What makes the sky look blue?"),
        (
            "Classify this email as spam or not: 'Win a prize now'",
            "Is the email 'Win a prize now' spam?",
        ),
        ("What should I avoid eating before a run?", "What should I not eat before a run?"),
        ("How do I install numpy with pip?", "What's the pip command to install numpy?"),
        ("How do I exit vim?", "How can I quit vim?"),
        ("List the planets of the solar system.", "What are the planets of the solar system?"),
    ],
)
def test_guards_let_paraphrase_through(cached: str, new: str) -> None:
    assert guard_failures(cached, new) == []


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("Is 1,000 more than 999?", ("1000", "999")),
        ("twenty five apples and a hundred pears", ("100", "25")),
        ("the 2nd and the third", ("#2", "#3")),
        ("which one is better", ()),  # a lone "one" is a pronoun
        ("a dozen eggs, twice", ("12", "x2")),
        ("Python 3.11 or 3.1", ("3.1", "3.11")),
    ],
)
def test_numbers_are_read_from_digits_and_words(text: str, numbers: tuple[str, ...]) -> None:
    assert features(text).numbers == numbers


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("5 km in miles", {"kilometer", "mile"}),
        ("100°F", {"fahrenheit"}),
        ("water them daily", {"day"}),
        ("costs $5 or 5 euros", {"dollar", "euro"}),
        ("a g string in a minute", {"minute"}),  # a lone "g" is no gram
    ],
)
def test_units_are_canonical(text: str, units: set[str]) -> None:
    assert features(text).units == units


@pytest.mark.parametrize(
    ("text", "entities"),
    [
        ("Is it legal in the US?", {"us"}),
        ("Where is the Mona Lisa?", {"mona", "lisa"}),
        ("Paris is lovely.", set()),  # a sentence start is no evidence
        ("Compare the iPhone and Node.js.", {"iphone", "node.js"}),
        ("I think so. Maybe.", set()),
    ],
)
def test_entities_are_capitalised_words_not_starting_a_sentence(
    text: str, entities: set[str]
) -> None:
    assert features(text).entities == entities


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Is it spam or not?", 0),
        ("Why doesn't it work?", 1),
        ("I can't and won't", 2),
        ("never without a plan", 2),
    ],
)
def test_negations_are_counted_but_or_not_is_none(text: str, count: int) -> None:
    assert features(text).negations == count


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("Who painted it?", "person"),
        ("Where is it?", "place"),
        ("How many are there?", "quantity"),
        ("How do I fix it?", "method"),
        ("Is it raining?", "yes/no"),
        ("Which one is it?", "any"),
        ("Summarize this text.", "any"),
    ],
)
def test_question_kind(text: str, kind: str) -> None:
    assert features(text).question == kind


def test_tokenize_expands_contractions() -> None:
    assert tokenize("What's wrong? It doesn't work, I can't") == (
        "what", "is", "wrong", "it", "does", "not", "work", "i", "can", "not",
    )  # fmt: skip


@pytest.mark.parametrize(("name", "agree"), GUARDS)
def test_every_guard_documents_itself_by_name(name: str, agree: object) -> None:
    assert (agree.__doc__ or "").startswith(f"{name}: ")
