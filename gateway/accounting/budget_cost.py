"""A request's maximum cost, reserved against budgets before the call (accounting/budgets.py).

prompt estimate + planned output (bound x choices, gateway/accounting/caps.py), priced at
the most expensive deployment the request may be sent to (its target alias's deployments
and its fallbacks' ones).
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.accounting.pricing import Price, PriceBook
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


class MaxCost:
    """A request's maximum cost, (tokens, usd), for one config. `output`: its planned
    output, bound x choices (gateway/accounting/caps.py); None when unbounded. Each alias's
    deployments, prices and default output are looked up once, not on every request (they
    change only with the config, which builds a new one)."""

    LIMIT = 4096  # aliases remembered; cleared when full

    def __init__(self, prices: PriceBook, models: Mapping[str, ModelConfig]) -> None:
        self.prices = prices
        self.models = models
        self._basis: dict[str, tuple[tuple[Price, ...], int]] = {}

    def __call__(
        self, alias: str, prompt_tokens: int, output: int | None, choices: int
    ) -> tuple[int, float]:
        basis = self._basis.get(alias)
        if basis is None:
            basis = self._learn(alias)
        prices, default_output = basis
        completion = output if output is not None else default_output * choices
        if len(prices) == 1:  # one deployment, no fallbacks: the usual alias
            return prompt_tokens + completion, prices[0].cost(prompt_tokens, completion)
        usd = max(price.cost(prompt_tokens, completion) for price in prices)
        return prompt_tokens + completion, usd

    def _learn(self, alias: str) -> tuple[tuple[Price, ...], int]:
        targets = deployments(self.models, alias)
        prices = tuple(self.prices.price(a, upstream) for a, upstream in targets)
        basis = (prices, max_output(self.prices, targets))
        if len(self._basis) >= self.LIMIT:
            self._basis.clear()
        self._basis[alias] = basis
        return basis
