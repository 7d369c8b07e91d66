"""The guards generalised by family (issue 16): for each, pairs it must split and the
paraphrases it must keep. The pairs differ from those in gateway/cache/eval_data where
they can: the rules are meant for the family, not for the examples."""

from __future__ import annotations

import pytest

from gateway.cache.features import tokenize
from gateway.cache.guards import guard_failures
from gateway.cache.numbers import numbers

SPLIT = [
    # negating affixes against the bare word of the other prompt
    ("negation", "Is the bridge safe to cross?", "Is the bridge unsafe to cross?"),
    ("negation", "Why is my SIM card active?", "Why is my SIM card inactive?"),
    ("negation", "Which charities are profit driven?", "Which charities are non-profit driven?"),
    ("negation", "List bacterial infections.", "List anti-bacterial infections."),
    ("negation", "Are wired earbuds worth it?", "Are wireless earbuds worth it?"),
    ("negation", "Is it legal to fly a drone here?", "Is it illegal to fly a drone here?"),
    ("negation", "Why is the socket connected?", "Why is the socket disconnected?"),
    ("negation", "Write a careful answer.", "Write a careless answer."),
    ("negation", "Is this move possible in chess?", "Is this move impossible in chess?"),
    ("negation", "Give me regular plural nouns.", "Give me irregular plural nouns."),
    ("negation", "Is the bridge safe to cross?", "Is the bridge not safe to cross?"),
    # numbers of the same digits and another magnitude, or another sign
    ("number", "Is 80k a good salary?", "Is 80 a good salary?"),
    ("number", "What is 2 million squared?", "What is 2 billion squared?"),
    ("number", "What is 4 million minus 4?", "What is 4 minus 4?"),
    ("number", "What is the cube of -2?", "What is the cube of 2?"),
    ("number", "How heavy are 1e6 ants?", "How heavy are 1e3 ants?"),
    ("number", "Is 3.10 newer than 3.9?", "Is 3.1 newer than 3.9?"),
    ("unit", "What does a 3 kW kettle cost to run?", "What does a 3 W kettle cost to run?"),
    # degree of comparison on one root
    ("degree", "Is rice healthier than pasta?", "Is rice less healthy than pasta?"),
    ("degree", "Is gold more expensive than silver?", "Is gold less expensive than silver?"),
    ("degree", "Which moon is bigger?", "Which moon is biggest?"),
    # code identifiers
    ("identifier", "What does os.path.join return?", "What does os.path.split return?"),
    ("identifier", "How do I use read_csv?", "How do I use read_json?"),
    ("identifier", "When does useEffect run?", "When does useLayoutEffect run?"),
    ("identifier", "What does np.argmax return?", "What does np.argmin return?"),
    # scales of several poles
    ("antonym", "Are all snakes venomous?", "Are some snakes venomous?"),
    ("antonym", "Are all snakes venomous?", "Are any snakes venomous?"),
    ("antonym", "Do most cats like water?", "Do few cats like water?"),
    ("antonym", "How do I pick every row?", "How do I pick every other row?"),
    ("antonym", "Must I declare this income?", "May I declare this income?"),
    ("antonym", "Do I need a permit to fish?", "Can I get a permit to fish?"),
    ("antonym", "Is a helmet mandatory?", "Is a helmet recommended?"),
    ("antonym", "Is the pool open on Tuesday?", "Is the pool open on Thursday?"),
    ("antonym", "What blooms in March?", "What blooms in October?"),
    ("antonym", "What is the sum of 4 and 6?", "What is the product of 4 and 6?"),
    ("antonym", "What is the mean of 1, 5 and 9?", "What is the median of 1, 5 and 9?"),
    ("antonym", "When was the last eclipse?", "When is the next eclipse?"),
    # direction, with a name of two words
    ("direction", "Train times from San Diego to Denver", "Train times from Denver to San Diego"),
    # a modifier slipped in before a shared noun
    ("slot", "What does a data analyst earn?", "What does a senior data analyst earn?"),
    ("slot", "Who built the first car?", "Who built the first electric car?"),
    # a time unit with a number is a unit
    ("unit", "How much should I save per week?", "How much should I save per month?"),
    # a length counts after a count
    ("format", "Describe Rome in one sentence.", "Describe Rome in one paragraph."),
]

KEEP = [
    ("Is the bridge unsafe to cross?", "Is the bridge not safe to cross?"),
    ("Is this berry inedible?", "Is this berry not edible?"),
    ("Name some nonprofit groups.", "Name some non-profit groups."),
    ("Why can't ostriches fly?", "Why are ostriches unable to fly?"),
    ("How long would it take to count to 1 million?", "How long to count to one million?"),
    ("What is 3 million divided by 2?", "What is 3,000,000 divided by 2?"),
    ("Is 2.5k subscribers a lot?", "Is 2,500 subscribers a lot?"),
    ("How do I invest 20 thousand euros?", "How do I invest 20,000 euros?"),
    ("What would 1e6 coins weigh?", "What would a million coins weigh?"),
    ("What is 2.0 divided by 7?", "What is 2 divided by 7?"),
    ("How many weeks are in 1.5 years?", "How many weeks are in one and a half years?"),
    ("Is a marathon longer than 40 km?", "Is a marathon more than 40 km long?"),
    ("Why do older dogs sleep more?", "Why do elderly dogs sleep more?"),
    ("What does os.path.join do?", "Explain os.path.join() please."),
    ("Are all snakes venomous?", "Is every snake venomous?"),
    ("Do I need a permit to fish here?", "Is a permit required to fish here?"),
    ("What is the mean of 1, 5 and 9?", "What is the average of 1, 5 and 9?"),
    ("Is Rust faster than Go?", "Does Rust run faster than Go?"),
    ("Is the number 81 a perfect square?", "Is 81 a perfect square?"),
    (
        "Is it legal to camp anywhere in the US?",
        "Can you legally camp anywhere in the United States?",
    ),
    ("When was Amazon founded?", "In what year was Amazon founded?"),
    ("How long should I boil pasta?", "How many minutes should I boil pasta?"),
    ("How much water should I drink per day?", "How much water should I drink daily?"),
    ("What is the Italian word for apple?", "How do you say apple in Italian?"),
    ("Is the museum open on Monday?", "Is the museum open on Mondays?"),
    ("How do I turn on dark mode?", "How can I enable dark mode?"),
    ("Is this review positive or not: 'Win win'", "Is the review 'Win win' positive?"),
]


@pytest.mark.parametrize(("guard", "cached", "new"), SPLIT)
def test_family_guard_splits_look_alikes(guard: str, cached: str, new: str) -> None:
    assert guard in guard_failures(cached, new)
    assert guard in guard_failures(new, cached)  # symmetric


@pytest.mark.parametrize(("cached", "new"), KEEP)
def test_family_guards_keep_paraphrases(cached: str, new: str) -> None:
    assert guard_failures(cached, new) == []
    assert guard_failures(new, cached) == []


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("80k or 80,000 or 8e4", ("80000", "80000", "80000")),
        ("2 million and 2 billion", ("2000000", "2000000000")),
        ("-5 and covid-19", ("-5", "19")),  # a hyphen inside a word is no sign
        ("1.0 and 3.10", ("1", "3.10")),  # zero fractions go; versions stay
        ("two and a half, a thousand", ("1000", "2.5")),
        ("1.5bn and 7M", ("1500000000", "7000000")),
    ],
)
def test_numbers_are_values_however_written(text: str, values: tuple[str, ...]) -> None:
    assert numbers(text, tokenize(text)) == values
