"""The price book of a config: `pricing` overrides over litellm's bundled price map."""

from __future__ import annotations

from gateway.accounting.pricing import Price, PriceBook
from gateway.config.schema import GatewayConfig


def price_book(config: GatewayConfig, previous: PriceBook | None = None) -> PriceBook:
    """One per generation (held in Services); a reload shares the previous book's parsed
    price map (3.5 MB of JSON, read once per process)."""
    overrides = {
        name: Price(price.input_per_mtok / 1e6, price.output_per_mtok / 1e6)
        for name, price in config.pricing.items()
    }
    return PriceBook(overrides) if previous is None else previous.with_overrides(overrides)


def prices_of(config: GatewayConfig, services_prices: PriceBook | None) -> PriceBook:
    """The generation's book, or a fresh one for services built without it (tests, tools)."""
    return services_prices if services_prices is not None else price_book(config)
