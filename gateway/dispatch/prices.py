"""Prices for dispatch and experiments, from `pricing` overrides and litellm's price map."""

from __future__ import annotations

from gateway.config.schema import GatewayConfig
from gateway.pricing import Price, PriceBook


def price_book(config: GatewayConfig) -> PriceBook:
    overrides = {
        name: Price(price.input_per_mtok / 1e6, price.output_per_mtok / 1e6)
        for name, price in config.pricing.items()
    }
    return PriceBook(overrides)
