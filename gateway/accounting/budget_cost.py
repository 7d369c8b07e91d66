"""A request's maximum cost, reserved against budgets before the call (accounting/budgets.py).

prompt estimate + planned output (bound x choices, gateway/accounting/caps.py), priced at
the most expensive deployment the request may be sent to (its target alias's deployments
and its fallbacks' ones).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.accounting.pricing import PriceBook
from gateway.config.schema import ModelConfig

UNBOUNDED_OUTPUT = 4096  # output tokens reserved when neither request nor model bounds it


def deployments(models: Mapping[str, ModelConfig], alias: str) -> list[tuple[str, str]]:
    """(alias, upstream model) of every deployment the request may be sent to."""
    out = []
    for name in [alias, *(models[alias].fallbacks if alias in models else [])]:
        model = models.get(name)
        out += [(name, d.model) for d in model.deployments] if model is not None else []
    return out or [(alias, "")]


def max_output(prices: PriceBook, targets: list[tuple[str, str]]) -> int:
    """Per choice, when neither the request nor a cap bounds the output."""
    known = [prices.max_output(alias, upstream) for alias, upstream in targets]
    present = [k for k in known if k]
    return max(present) if present else UNBOUNDED_OUTPUT


def max_request_cost(
    prices: PriceBook,
    models: Mapping[str, ModelConfig],
    alias: str,
    prompt_tokens: int,
    output: int | None,
    choices: int,
) -> tuple[int, float]:
    """(tokens, usd) the request may use at most. `output`: its planned output, bound x
    choices (gateway/accounting/caps.py); None when unbounded."""
    targets = deployments(models, alias)
    completion = output if output is not None else max_output(prices, targets) * choices
    usd = max(prices.cost(a, upstream, prompt_tokens, completion) for a, upstream in targets)
    return prompt_tokens + completion, usd
