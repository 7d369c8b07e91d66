"""Load-balancing orders and retry backoff, without a network."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.config.routing import RetryConfig
from gateway.config.schema import DeploymentConfig, ModelConfig
from gateway.dispatch.balancer import Balancer
from gateway.dispatch.retry import backoff_seconds, may_fall_back
from gateway.errors import InvalidRequest, UpstreamError, UpstreamTimeout


def model(strategy: str, *weights: float) -> ModelConfig:
    deployments = [
        DeploymentConfig(provider="p", model=f"m{i}", weight=w) for i, w in enumerate(weights)
    ]
    return ModelConfig(deployments=deployments, strategy=strategy)  # type: ignore[arg-type]


def test_weighted_first_choice_follows_weights() -> None:
    balancer = Balancer(rng=random.Random(7))
    firsts = Counter(balancer.order(model("weighted", 3, 1))[0].model for _ in range(4000))
    assert 0.72 < firsts["m0"] / 4000 < 0.78


def test_least_busy_prefers_fewest_in_flight() -> None:
    balancer = Balancer()
    for _ in range(3):
        balancer.started("p/m0")
    balancer.started("p/m1")
    assert [d.model for d in balancer.order(model("least_busy", 1, 1, 1))] == ["m2", "m1", "m0"]
    balancer.finished("p/m0")
    assert balancer.load("p/m0").in_flight == 2


def test_latency_prefers_lowest_ewma_and_measures_newcomers_first() -> None:
    balancer = Balancer()
    balancer.observe_latency("p/m0", 0.5)
    balancer.observe_latency("p/m1", 0.1)
    assert [d.model for d in balancer.order(model("latency", 1, 1, 1))] == ["m2", "m1", "m0"]
    for _ in range(10):
        balancer.observe_latency("p/m1", 1.0)  # it got slow: the average follows
    assert balancer.order(model("latency", 1, 1))[0].model == "m0"


def test_cost_prefers_cheapest() -> None:
    prices = {"m0": 3.0, "m1": 1.0, "m2": 2.0}
    balancer = Balancer(price_of=lambda d: prices[d.model])
    assert [d.model for d in balancer.order(model("cost", 1, 1, 1))] == ["m1", "m2", "m0"]


@pytest.mark.parametrize(
    ("retry_number", "retry_after", "low", "high"),
    [
        (1, None, 0.05, 0.1),
        (2, None, 0.1, 0.2),
        (3, None, 0.2, 0.4),
        (10, None, 0.5, 1.0),  # capped at backoff_max_ms
        (1, 3.0, 3.0, 3.0),  # Retry-After wins when longer
    ],
)
def test_backoff_is_jittered_exponential_and_honours_retry_after(
    retry_number: int, retry_after: float | None, low: float, high: float
) -> None:
    policy = RetryConfig(backoff_base_ms=100, backoff_max_ms=1000)
    for _ in range(50):
        assert low <= backoff_seconds(policy, retry_number, retry_after) <= high


@pytest.mark.parametrize(
    ("error", "allowed", "falls_back"),
    [
        (UpstreamTimeout("slow"), [], True),
        (UpstreamError("busy", upstream_status=429), [], True),
        (UpstreamError("bad", upstream_status=400, retryable=False), [], False),
        (InvalidRequest("long", code="context_length_exceeded"), [], False),
        (InvalidRequest("long", code="context_length_exceeded"), ["context_window"], True),
        (
            UpstreamError("no", upstream_status=400, retryable=False, code="content_filter"),
            ["content_policy"],
            True,
        ),
    ],
)
def test_which_errors_fall_back(error: Exception, allowed: list[str], falls_back: bool) -> None:
    assert may_fall_back(error, allowed) is falls_back  # type: ignore[arg-type]
