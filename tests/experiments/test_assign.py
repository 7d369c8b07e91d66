"""Variant assignment: weighted, sticky, forcible; what a variant changes in the request."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from gateway.auth.principal import Principal
from gateway.config.experiments import ExperimentConfig, VariantConfig
from gateway.context import RequestContext
from gateway.errors import InvalidRequest, PermissionDenied
from gateway.experiments.assign import Assigner, apply_variant, unit_of

SPLIT = ExperimentConfig.model_validate(
    {
        "applies_to": "auto",
        "variants": {
            "control": {"target": "smart", "weight": 50},
            "cheap": {"target": "fast", "weight": 30},
            "new": {"target": "fast", "weight": 20},
            "staff-only": {"target": "fast", "weight": 0},
        },
    }
)


def ctx(body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **who: Any):
    return RequestContext(
        request_id="r",
        endpoint="chat",
        body=body or {"messages": []},
        headers=headers or {},
        client_ip="",
        principal=Principal(
            key_id=who.get("key_id", "key-1"),
            user=who.get("user"),
            may_force_variant=who.get("may_force", True),
        ),
    )


def test_split_over_10000_users_matches_weights() -> None:
    assigner = Assigner("pricing-test", SPLIT)
    users = 10_000
    counts = Counter(assigner.pick(f"u:user-{i}") for i in range(users))
    for variant, share in {"control": 0.5, "cheap": 0.3, "new": 0.2}.items():
        sigma = math.sqrt(users * share * (1 - share))
        assert abs(counts[variant] - users * share) < 4 * sigma, counts
    assert counts["staff-only"] == 0


def test_assignment_is_sticky_and_differs_between_experiments() -> None:
    first, again = Assigner("a", SPLIT), Assigner("a", SPLIT)
    other = Assigner("b", SPLIT)
    units = [f"u:{i}" for i in range(200)]
    assert [first.pick(u) for u in units] == [again.pick(u) for u in units]
    assert [first.pick(u) for u in units] != [other.pick(u) for u in units]  # independent


@pytest.mark.parametrize(
    ("body", "who", "unit"),
    [
        ({"user": "alice"}, {"user": "bob"}, "u:alice"),
        ({}, {"user": "bob"}, "u:bob"),
        ({}, {"key_id": "key-9"}, "k:key-9"),
        ({"user": ""}, {"key_id": "key-9"}, "k:key-9"),
    ],
)
def test_unit_is_body_user_then_key_user_then_key(
    body: dict[str, Any], who: dict[str, str], unit: str
) -> None:
    assert unit_of(ctx(body, **who)) == unit


@pytest.mark.parametrize("variant", ["staff-only", "control", "no-such-variant"])
def test_forcing_a_variant_needs_the_permission(variant: str) -> None:
    """Without may_force_variant every forced name is 403, known or not (nothing leaks)."""
    refused = ctx(headers={"x-gateway-variant": variant}, may_force=False)
    with pytest.raises(PermissionDenied) as caught:
        Assigner("e", SPLIT).assign(refused)
    assert caught.value.param == "x-gateway-variant" and variant not in caught.value.message


def test_header_forces_a_variant_even_with_zero_weight() -> None:
    assignment = Assigner("e", SPLIT).assign(ctx(headers={"x-gateway-variant": "staff-only"}))
    assert (assignment.variant, assignment.forced, assignment.header) == (
        "staff-only",
        True,
        "e=staff-only",
    )
    with pytest.raises(InvalidRequest, match="has no variant 'nope'"):
        Assigner("e", SPLIT).assign(ctx(headers={"x-gateway-variant": "nope"}))


SYSTEM = {"role": "system", "content": "You are helpful."}
USER = {"role": "user", "content": "hi"}


@pytest.mark.parametrize(
    ("variant", "messages", "expected"),
    [
        ({}, [SYSTEM, USER], {"messages": [SYSTEM, USER]}),
        (
            {"system_prompt": "Be brief."},
            [SYSTEM, USER],
            {"messages": [{"role": "system", "content": "Be brief.\n\nYou are helpful."}, USER]},
        ),
        (
            {"system_prompt": "Be brief.", "system_prompt_mode": "replace"},
            [SYSTEM, USER],
            {"messages": [{"role": "system", "content": "Be brief."}, USER]},
        ),
        (
            {"system_prompt": "Be brief."},
            [USER],
            {"messages": [{"role": "system", "content": "Be brief."}, USER]},
        ),
        (
            {"params": {"temperature": 0.2, "seed": 7}, "max_tokens": 64},
            [USER],
            {"messages": [USER], "temperature": 0.2, "seed": 7, "max_tokens": 64},
        ),
    ],
)
def test_variant_overrides(
    variant: dict[str, Any], messages: list[dict[str, Any]], expected: dict[str, Any]
) -> None:
    body = {"model": "auto", "messages": messages, "temperature": 1.0}
    changed = apply_variant(body, VariantConfig(target="fast", **variant))
    assert changed == {"model": "auto", "temperature": 1.0, **expected}
    assert body["messages"] is messages  # the client's body is untouched
