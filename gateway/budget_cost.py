"""A request's maximum cost, reserved against budgets before the call (gateway/budgets.py).

prompt estimate + output bound x choices, priced at the most expensive deployment the
request may be sent to (its target alias's deployments and its fallbacks' ones).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.config.schema import ModelConfig
from gateway.pricing import PriceBook

UNBOUNDED_OUTPUT = 4096  # output tokens reserved when neither request nor model bounds it


def choices(body: Mapping[str, Any]) -> int:
    """How many completions the request asks for (`n`); 1 when absent or not a count.
    (One small function so the canonical-request accessor can replace it.)"""
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def deployments(models: Mapping[str, ModelConfig], alias: str) -> list[tuple[str, str]]:
    """(alias, upstream model) of every deployment the request may be sent to."""
    out = []
    for name in [alias, *(models[alias].fallbacks if alias in models else [])]:
        model = models.get(name)
        out += [(name, d.model) for d in model.deployments] if model is not None else []
    return out or [(alias, "")]


def max_output(prices: PriceBook, targets: list[tuple[str, str]], bound: int | None) -> int:
    if bound is not None:
        return bound
    known = [prices.max_output(alias, upstream) for alias, upstream in targets]
    present = [k for k in known if k]
    return max(present) if present else UNBOUNDED_OUTPUT


def max_request_cost(
    prices: PriceBook,
    models: Mapping[str, ModelConfig],
    alias: str,
    prompt_tokens: int,
    output_bound: int | None,
    n: int,
) -> tuple[int, float]:
    """(tokens, usd) the request may use at most (output_bound: per choice, or None)."""
    targets = deployments(models, alias)
    completion = max_output(prices, targets, output_bound) * n
    usd = max(prices.cost(a, upstream, prompt_tokens, completion) for a, upstream in targets)
    return prompt_tokens + completion, usd
