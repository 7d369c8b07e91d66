"""Reference checks for routes, fallbacks and experiments: every name must exist."""

from __future__ import annotations

from collections.abc import Iterator

from gateway.config.schema import GatewayConfig


def routing_references(config: GatewayConfig) -> Iterator[str]:
    models, routes = config.models, config.routes
    for alias, model in models.items():
        for i, fallback in enumerate(model.fallbacks):
            if fallback not in models:
                yield f"models.{alias}.fallbacks[{i}]: unknown model alias '{fallback}'"
            elif fallback == alias:
                yield f"models.{alias}.fallbacks[{i}]: an alias cannot fall back to itself"
    for name, route in routes.items():
        where = f"routes.{name}"
        if name in models:
            yield f"{where}: the name is already a model alias"
        if route.default not in models:
            yield f"{where}.default: unknown model alias '{route.default}'"
        for i, rule in enumerate(route.rules):
            if rule.target not in models:
                yield f"{where}.rules[{i}].target: unknown model alias '{rule.target}'"
        if route.classifier is not None:
            for tier, spec in route.classifier.tiers.items():
                if spec.target not in models:
                    yield (
                        f"{where}.classifier.tiers.{tier}.target: "
                        f"unknown model alias '{spec.target}'"
                    )
    yield from _experiment_references(config)


def _experiment_references(config: GatewayConfig) -> Iterator[str]:
    names = set(config.models) | set(config.routes)
    applied: dict[str, str] = {}
    for name, experiment in config.experiments.items():
        where = f"experiments.{name}"
        if experiment.applies_to not in names:
            yield f"{where}.applies_to: unknown model alias or route '{experiment.applies_to}'"
        elif experiment.enabled and experiment.applies_to in applied:
            other = applied[experiment.applies_to]
            yield f"{where}.applies_to: '{experiment.applies_to}' already has experiment '{other}'"
        elif experiment.enabled:
            applied[experiment.applies_to] = name
        for variant, spec in experiment.variants.items():
            if spec.target not in names:
                yield (
                    f"{where}.variants.{variant}.target: "
                    f"unknown model alias or route '{spec.target}'"
                )
