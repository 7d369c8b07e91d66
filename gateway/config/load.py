"""Load a config: YAML → literal-secret check → ${ENV} substitution → schema → references
→ installed extras. Every problem found is reported at once, each with its key path."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.config.cache import cache_references
from gateway.config.extras import missing_extras
from gateway.config.problems import describe_errors
from gateway.config.references import routing_references
from gateway.config.schema import GatewayConfig

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
# Keys whose values are secrets: they may only be written as ${ENV_VAR} references.
SECRET_KEYS = frozenset({"api_key", "admin_key", "token", "password", "secret", "dsn"})
QUICKSTART = Path(__file__).resolve().parent.parent / "quickstart.yaml"


class ConfigError(Exception):
    """A config that cannot be used; `problems` lists each one with its key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid configuration:\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems


def load_config(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    source = Path(path) if path else QUICKSTART
    try:
        text = source.read_text()
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read ({exc.strerror})"]) from None
    return load_config_text(text, env)


def load_config_text(text: str, env: Mapping[str, str] | None = None) -> GatewayConfig:
    env = os.environ if env is None else env
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"YAML syntax: {exc}"]) from None
    if not isinstance(raw, dict):
        raise ConfigError(["<root>: expected a mapping of sections"])
    problems = list(_literal_secrets(raw))
    resolved = _substitute(raw, env, "", problems)
    try:
        config = GatewayConfig.model_validate(resolved)
    except ValidationError as exc:
        # Names across sections and installs are checked only on a config that parses.
        raise ConfigError(problems + describe_errors(exc.errors(), GatewayConfig)) from None
    problems += check_references(config)
    problems += missing_extras(config)
    if problems:
        raise ConfigError(problems)
    return config


def check_references(config: GatewayConfig) -> Iterator[str]:
    """Cross-section checks the schema cannot express: names that must exist elsewhere."""
    for alias, model in config.models.items():
        for i, deployment in enumerate(model.deployments):
            if deployment.provider not in config.providers:
                yield (
                    f"models.{alias}.deployments[{i}].provider: "
                    f"unknown provider '{deployment.provider}'"
                )
    yield from routing_references(config)
    yield from cache_references(config.models, config.cache)


def _literal_secrets(node: Any, path: str = "") -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            child = _join(path, str(key))
            if key in SECRET_KEYS and isinstance(value, str) and not _is_env_ref(value):
                yield (
                    f"{child}: secrets must not be written in the config file; "
                    f"use an environment reference such as ${{{str(key).upper()}}}"
                )
            else:
                yield from _literal_secrets(value, child)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _literal_secrets(value, f"{path}[{i}]")


def _is_env_ref(value: str) -> bool:
    return ENV_REF.fullmatch(value.strip()) is not None


def _substitute(node: Any, env: Mapping[str, str], path: str, problems: list[str]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, env, _join(path, str(k)), problems) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, env, f"{path}[{i}]", problems) for i, v in enumerate(node)]
    if not isinstance(node, str) or "${" not in node:
        return node

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        problems.append(f"{path}: environment variable {name} is not set")
        return ""

    return ENV_REF.sub(replace, node)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
