"""Build provider adapters by `kind`; slow adapters (litellm) import only when used."""

from __future__ import annotations

from gateway.config.schema import GatewayConfig, ProviderConfig
from gateway.types import Provider


def build_provider(name: str, config: ProviderConfig) -> Provider:
    if config.kind == "openai":
        from gateway.providers.openai import OpenAIProvider

        if config.responses == "native":
            from gateway.providers.openai_responses import NativeResponses

            return NativeResponses(OpenAIProvider(name, config))
        return OpenAIProvider(name, config)
    if config.kind == "mock":
        from gateway.providers.mock import MockProvider

        return MockProvider(name, config)
    if config.kind == "anthropic":
        from gateway.providers.anthropic import AnthropicProvider

        return AnthropicProvider(name, config)
    if config.kind == "litellm":
        from gateway.providers.litellm import LiteLLMProvider

        return LiteLLMProvider(name, config)
    raise ValueError(f"unknown provider kind {config.kind!r}")


def build_providers(config: GatewayConfig) -> dict[str, Provider]:
    return {name: build_provider(name, provider) for name, provider in config.providers.items()}
