"""The routing decision for one request: classifier, then rules in order, then default."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config.routing import RouteConfig
from gateway.context import RequestContext
from gateway.routing.classifier import SemanticClassifier, default_embedder
from gateway.routing.features import RequestFeatures
from gateway.routing.rules import CompiledRule, compile_rule

if TYPE_CHECKING:
    from gateway.cache.embedders import Embedder


@dataclass(frozen=True)
class RouteDecision:
    route: str
    target: str
    reason: str  # "rule: NAME", "classifier: TIER (0.83)" or "default"

    @property
    def header(self) -> str:
        return f"{self.route} -> {self.target} ({self.reason})"


class Router:
    """One compiled route."""

    def __init__(self, name: str, config: RouteConfig, embedder: Embedder | None) -> None:
        self.name = name
        self.default = config.default
        self.rules: tuple[CompiledRule, ...] = tuple(compile_rule(r) for r in config.rules)
        self.classifier: SemanticClassifier | None = None
        if config.classifier is not None:
            assert embedder is not None
            self.classifier = SemanticClassifier(config.classifier, embedder)

    async def decide(self, ctx: RequestContext) -> RouteDecision:
        features = RequestFeatures(ctx)
        if self.classifier is not None:
            match = await self.classifier.classify(features.newest_user_text)
            if match is not None:
                reason = f"classifier: {match.tier} ({match.score:.2f})"
                return RouteDecision(self.name, match.target, reason)
        for rule in self.rules:
            if rule.matches(features):
                return RouteDecision(self.name, rule.target, f"rule: {rule.name}")
        return RouteDecision(self.name, self.default, "default")


def build_routers(
    routes: Mapping[str, RouteConfig], embedder: Embedder | None = None
) -> dict[str, Router]:
    """Compile every route; a classifier uses `embedder` (the process's shared one), or
    one made here if none is given and some route classifies."""
    if embedder is None and any(route.classifier is not None for route in routes.values()):
        embedder = default_embedder()
    return {name: Router(name, route, embedder) for name, route in routes.items()}
