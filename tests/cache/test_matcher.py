"""The matcher: a hit needs both the similarity and every guard; the reason says which failed."""

from __future__ import annotations

import pytest

from gateway.cache.guards import GUARDS
from gateway.cache.matcher import DEFAULT_THRESHOLD, Decision, MatchPolicy, decide

PASSWORD = ("How do I reset my password?", "How can I reset my password?")


@pytest.mark.parametrize(
    ("similarity", "cached", "new", "reason"),
    [
        (0.95, *PASSWORD, "hit"),
        (0.70, *PASSWORD, "below-threshold"),
        (0.99, "Is 64 a perfect square?", "Is 65 a perfect square?", "guard:number"),
        (0.99, "Convert 5 km to miles.", "Convert 5 miles to km.", "guard:direction"),
        (0.99, "Is coffee bad for you?", "Is coffee not bad for you?", "guard:negation"),
        (0.99, "Can dogs eat grapes?", "Can cats eat grapes?", "guard:slot"),
    ],
)
def test_decide_serves_only_close_prompts_that_pass_every_guard(
    similarity: float, cached: str, new: str, reason: str
) -> None:
    expected = Decision(reason == "hit", similarity, reason)
    assert decide(similarity, cached, new, MatchPolicy()) == expected


def test_threshold_is_inclusive() -> None:
    policy = MatchPolicy(threshold=0.9)
    assert decide(0.9, "What is a mutex?", "What is a mutex?", policy).serve


def test_first_failing_guard_in_guard_order_names_the_reason() -> None:
    decision = decide(0.99, "Is 64 a perfect square?", "Can cats eat 65 grapes?", MatchPolicy())
    assert decision.reason == "guard:number"  # number comes before slot and question


def test_policy_can_leave_a_guard_out() -> None:
    policy = MatchPolicy(guards=tuple(name for name, _ in GUARDS if name != "number"))
    decision = decide(0.99, "Is 64 a perfect square?", "Is 65 a perfect square?", policy)
    assert decision.serve  # numbers are the number guard's alone


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -2.0}, "threshold"),
        ({"guards": ("number", "nmber")}, "unknown guard 'nmber'"),
    ],
)
def test_policy_rejects_bad_settings_by_name(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MatchPolicy(**kwargs)  # type: ignore[arg-type]


def test_default_policy_uses_the_tuned_threshold_and_all_guards() -> None:
    policy = MatchPolicy()
    assert policy.threshold == DEFAULT_THRESHOLD
    assert policy.guards == tuple(name for name, _ in GUARDS)
