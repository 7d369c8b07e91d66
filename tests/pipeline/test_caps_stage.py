"""The caps stage in-process: max_tokens defaults and ceilings, refusals, the input limit and
budget reservations, on the memory state (tests/access/test_caps.py drives a real gateway)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.accounting.budgets import SpendStore
from gateway.accounting.pricing import Price, PriceBook
from gateway.auth.principal import ANONYMOUS, Principal
from gateway.config.access import BudgetConfig, CapsConfig, CapsSection
from gateway.config.schema import DeploymentConfig, ModelConfig
from gateway.errors import GatewayError
from gateway.observability.metrics import Metrics
from gateway.pipeline.caps import CLAMP_HEADER, Caps
from gateway.state.memory import MemoryState
from gateway.types import Usage
from tests.fakes import USER, Answer, context

MODELS = {"m": ModelConfig(deployments=[DeploymentConfig(provider="p", model="up-m")])}
# Overrides by alias: the bundled price map is never read.
PRICES = PriceBook({"m": Price(input_per_token=1e-6, output_per_token=2e-6)})


def caps_stage(state: MemoryState | None = None, **model_caps: Any) -> Caps:
    section = CapsSection(models={"m": CapsConfig(**model_caps)})
    spend = SpendStore(state or MemoryState())
    return Caps(section, MODELS, spend, PRICES, Metrics())


def chat(**fields: Any) -> dict[str, Any]:
    return {"messages": [USER], **fields}


@pytest.mark.parametrize(
    ("model_caps", "key_caps", "body", "sent", "clamped"),
    [
        ({"default_max_tokens": 100}, {}, chat(), {"max_tokens": 100}, None),
        ({"default_max_tokens": 100}, {}, chat(max_tokens=30), {"max_tokens": 30}, None),
        ({"max_tokens": 100}, {}, chat(max_tokens=500), {"max_tokens": 100}, "500->100"),
        ({"max_tokens": 100}, {}, chat(max_tokens=100), {"max_tokens": 100}, None),
        (
            {"max_tokens": 100},
            {},
            chat(max_tokens=500, max_completion_tokens=300),
            {"max_tokens": 100, "max_completion_tokens": 100},
            "500->100",
        ),
        (
            {"max_tokens": 100},
            {},
            chat(max_completion_tokens=300, max_tokens=None),
            {"max_completion_tokens": 100, "max_tokens": None},
            "300->100",
        ),
        (
            {"max_tokens": 100},
            {"max_tokens": 40},
            chat(max_tokens=60),
            {"max_tokens": 40},
            "60->40",
        ),
        ({"max_tokens": 100, "max_choices": 2}, {}, chat(max_tokens=10, n=2), {"n": 2}, None),
        ({"max_output_tokens": 300}, {}, chat(max_tokens=100, n=3), {"max_tokens": 100}, None),
    ],
)
async def test_accepted_requests_go_on_with_their_bound(
    model_caps: dict[str, Any],
    key_caps: dict[str, Any],
    body: dict[str, Any],
    sent: dict[str, Any],
    clamped: str | None,
) -> None:
    ctx = context(body, principal=Principal("k", caps=CapsConfig(**key_caps)))
    answer = Answer()
    await caps_stage(**model_caps)(ctx, answer)
    assert len(answer.bodies) == 1
    assert {field: answer.bodies[0].get(field) for field in sent} == sent
    assert ctx.response_headers.get(CLAMP_HEADER) == clamped


@pytest.mark.parametrize(
    ("model_caps", "body", "code", "param"),
    [
        (
            {"max_tokens": 100, "on_exceed": "reject"},
            chat(max_tokens=101),
            "max_tokens_exceeded",
            "max_tokens",
        ),
        (
            {"max_tokens": 100, "on_exceed": "reject"},
            chat(max_tokens=50, max_completion_tokens=200),
            "max_tokens_exceeded",
            "max_completion_tokens",
        ),
        ({"max_choices": 2}, chat(n=3), "too_many_choices", "n"),
        (
            {"max_output_tokens": 250},
            chat(max_tokens=100, n=3),
            "max_tokens_exceeded",
            "max_tokens",
        ),
        ({"max_output_tokens": 250}, chat(), "max_tokens_required", "max_tokens"),
        ({"max_input_tokens": 9}, chat(), "context_length_exceeded", "messages"),
    ],
)
async def test_refused_requests_get_400_before_the_call(
    model_caps: dict[str, Any], body: dict[str, Any], code: str, param: str
) -> None:
    answer = Answer()
    with pytest.raises(GatewayError) as refused:
        await caps_stage(**model_caps)(context(body, prompt_tokens=10), answer)
    assert refused.value.http_status == 400
    assert (refused.value.code, refused.value.param) == (code, param)
    assert answer.bodies == []


@pytest.mark.parametrize(("prompt_tokens", "passes"), [(9, True), (10, True), (11, False)])
async def test_input_limit_is_inclusive(prompt_tokens: int, passes: bool) -> None:
    answer = Answer()
    stage = caps_stage(max_input_tokens=10)
    try:
        await stage(context(prompt_tokens=prompt_tokens), answer)
    except GatewayError as err:
        assert err.code == "context_length_exceeded"
    assert bool(answer.bodies) is passes


async def test_embeddings_have_no_output_bound() -> None:
    answer = Answer()
    await caps_stage(default_max_tokens=100, max_tokens=100)(context(endpoint="embeddings"), answer)
    assert "max_tokens" not in answer.bodies[0]


def budget_key(**budget: Any) -> Principal:
    return Principal("k", budget=BudgetConfig(**budget))


@pytest.mark.parametrize(
    ("budget", "max_tokens", "fits"),
    [
        ({"tokens_per_day": 100}, 90, True),  # 10 prompt + 90 = 100: exactly the budget
        ({"tokens_per_day": 100}, 91, False),
        ({"tokens_per_month": 100}, 91, False),
        ({"usd_per_day": 0.0002}, 95, True),  # 10 x 1e-6 + 95 x 2e-6 = 0.0002
        ({"usd_per_day": 0.0002}, 96, False),
        ({}, 10_000, True),  # no budget: nothing reserved
    ],
)
async def test_budget_reservation_refused_with_429_insufficient_quota(
    budget: dict[str, Any], max_tokens: int, fits: bool
) -> None:
    stage, answer = caps_stage(), Answer()
    ctx = context(chat(max_tokens=max_tokens), principal=budget_key(**budget))
    try:
        reply = await stage(ctx, answer)
        await reply.close()
    except GatewayError as err:
        assert (err.http_status, err.error_type, err.code) == (
            429,
            "insufficient_quota",
            "insufficient_quota",
        )
        assert err.param == "key"
        assert stage.metrics.budget_refusals.labels("key")._value.get() == 1
    assert bool(answer.bodies) is fits


async def test_budget_reservation_is_settled_to_real_usage_or_released() -> None:
    """Reserved 60 of 100: a second 60 does not fit while the first is in flight; once it
    settles to its real 7 tokens, or is released when the call fails, it does."""
    state = MemoryState()
    stage = caps_stage(state)
    key = budget_key(tokens_per_day=100)
    first = await stage(context(chat(max_tokens=50), principal=key), Answer(Usage(3, 4)))
    with pytest.raises(GatewayError, match="too little budget"):
        await stage(context(chat(max_tokens=50), principal=key), Answer())
    await first.close()
    second = await stage(context(chat(max_tokens=50), principal=key), Answer(Usage(3, 4)))
    await second.close()
    assert (await stage.spend.usage("key", "k"))["day"]["tokens"] == 14
    with pytest.raises(RuntimeError):
        await stage(context(chat(max_tokens=70), principal=key), Answer(error=RuntimeError()))
    third = await stage(context(chat(max_tokens=76), principal=key), Answer())
    await third.close()  # 14 spent + 86 reserved = 100: the failed call gave its 80 back


async def test_anonymous_requests_reserve_nothing() -> None:
    stage = caps_stage()
    reply = await stage(context(chat(max_tokens=10), principal=ANONYMOUS), Answer())
    await reply.close()
    assert (await stage.spend.usage("key", "anonymous"))["day"]["tokens"] == 0
