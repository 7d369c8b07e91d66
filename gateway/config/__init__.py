"""Configuration: one typed, frozen schema loaded from YAML with ${ENV} references."""

from gateway.config.load import ConfigError, load_config, load_config_text
from gateway.config.schema import GatewayConfig

__all__ = ["ConfigError", "GatewayConfig", "load_config", "load_config_text"]
