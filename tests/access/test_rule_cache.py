"""Rate-limit rules are built once per key and config generation (gateway/ratelimit/rules.py),
and a reloaded config's limits apply at once: the cache is keyed on the limits object."""

from __future__ import annotations

from gateway.config.access import ScopeLimits
from gateway.ratelimit import rules
from gateway.ratelimit.rules import rules_for


def test_the_same_limits_give_the_same_rules_without_building_them_again() -> None:
    limits = ScopeLimits(requests=["5/minute"], tokens=["100/minute"])
    first = rules_for("key", "k", limits)
    second = rules_for("key", "k", limits)
    assert first == second and first is not second  # callers may extend their list
    assert [r.key for r in first] == [r.item.key_for("key", r.kind, "k") for r in first]
    second.append(first[0])
    assert len(rules_for("key", "k", limits)) == 2


def test_new_limits_for_the_same_key_take_effect_at_once() -> None:
    old = ScopeLimits(requests=["5/minute"])
    assert [r.item.amount for r in rules_for("key", "k2", old)] == [5]
    reloaded = ScopeLimits(requests=["7/minute"])
    assert [r.item.amount for r in rules_for("key", "k2", reloaded)] == [7]
    assert [r.item.amount for r in rules_for("user", "k2", old)] == [5]


def test_the_cache_is_bounded() -> None:
    limits = ScopeLimits(requests=["5/minute"])
    for i in range(rules.RULES_CACHED + 10):
        rules_for("ip", f"10.0.{i // 256}.{i % 256}", limits)
    assert len(rules._RULES) <= rules.RULES_CACHED
