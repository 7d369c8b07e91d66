"""Per-model prices in USD: litellm's bundled price map read offline, YAML overrides first.

The JSON file is read directly from the installed litellm package (without importing
litellm) the first time a price is needed, so start-up pays nothing for it.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

log = logging.getLogger("gateway")

PRICE_FILE = "model_prices_and_context_window_backup.json"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Price:
    input_per_token: float
    output_per_token: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token


FREE = Price(0.0, 0.0)


class PriceBook:
    """Looks a model up by alias override, then upstream name (with and without prefix)."""

    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self.overrides = dict(overrides or {})
        self._table: dict[str, Any] | None = None
        self._lock = threading.Lock()
        # Answers by (alias, upstream model): looked up on every request, they never change
        # for a book (a new config builds a new book). Bounded: names can come from clients.
        self._prices: dict[tuple[str, str], Price] = {}
        self._max_outputs: dict[tuple[str, str], int | None] = {}

    def with_overrides(self, overrides: Mapping[str, Price]) -> PriceBook:
        """A book with other overrides that shares this one's price map (read once)."""
        book = PriceBook(overrides)
        book._table = self.table()
        return book

    def price(self, alias: str, upstream_model: str = "") -> Price:
        key = (alias, upstream_model)
        found = self._prices.get(key)
        if found is None:
            found = _remember(self._prices, key, self._price(alias, upstream_model))
        return found

    def _price(self, alias: str, upstream_model: str) -> Price:
        for name in (alias, upstream_model):
            if name in self.overrides:
                return self.overrides[name]
        table = self.table()
        for name in _candidates(upstream_model) + _candidates(alias):
            entry = table.get(name)
            if isinstance(entry, dict) and "input_cost_per_token" in entry:
                return Price(
                    float(entry.get("input_cost_per_token") or 0.0),
                    float(entry.get("output_cost_per_token") or 0.0),
                )
        return FREE

    def max_output(self, alias: str, upstream_model: str = "") -> int | None:
        """The model's maximum output tokens from the price map, when it says."""
        key = (alias, upstream_model)
        if key in self._max_outputs:
            return self._max_outputs[key]
        return _remember(self._max_outputs, key, self._max_output(alias, upstream_model))

    def _max_output(self, alias: str, upstream_model: str) -> int | None:
        table = self.table()
        for name in _candidates(upstream_model) + _candidates(alias):
            entry = table.get(name)
            if isinstance(entry, dict):
                value = entry.get("max_output_tokens") or entry.get("max_tokens")
                if isinstance(value, int) and value > 0:
                    return value
        return None

    def cost(self, alias: str, upstream_model: str, prompt: int, completion: int) -> float:
        return self.price(alias, upstream_model).cost(prompt, completion)

    def table(self) -> dict[str, Any]:
        if self._table is None:
            with self._lock:
                if self._table is None:
                    self._table = load_price_map()
        return self._table


MEMO_LIMIT = 4096  # answers kept per book; cleared when full


def _remember(memo: dict[tuple[str, str], T], key: tuple[str, str], value: T) -> T:
    if len(memo) >= MEMO_LIMIT:
        memo.clear()
    memo[key] = value
    return value


def load_price_map() -> dict[str, Any]:
    path = bundled_price_file()
    if path is None:
        log.warning("litellm's price map is not installed; unpriced models cost 0")
        return {}
    try:
        return slim(json.loads(path.read_text()))
    except (OSError, ValueError):
        log.warning("could not read the price map %s", path, exc_info=True)
        return {}


PRICE_FIELDS = ("input_cost_per_token", "output_cost_per_token", "max_output_tokens", "max_tokens")


def slim(table: Any) -> dict[str, Any]:
    """Of each model's entry, the fields a price book reads: the map's 3.5 MB of JSON,
    some 30 fields a model, would otherwise stay in every process."""
    if not isinstance(table, dict):
        return {}
    return {
        name: {f: entry[f] for f in PRICE_FIELDS if f in entry}
        for name, entry in table.items()
        if isinstance(entry, dict)
    }


def bundled_price_file() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / PRICE_FILE
        if path.is_file():
            return path
    return None


def _candidates(model: str) -> list[str]:
    """`openai/gpt-4o` is listed as `gpt-4o`; try the name as given and without its prefix."""
    if not model:
        return []
    names = [model]
    if "/" in model:
        names.append(model.split("/", 1)[1])
    return names
