"""Order an alias's deployments for one request: the first is tried first, the rest are
where retries go. Strategies: weighted random, least in-flight, lowest latency (EWMA),
lowest price."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config.schema import DeploymentConfig, ModelConfig

EWMA_ALPHA = 0.3  # weight of the newest latency sample


@dataclass
class DeploymentLoad:
    in_flight: int = 0
    latency_ewma: float | None = None  # seconds until the first byte; None: never measured


class Balancer:
    """Per-process load and latency of each deployment (by name)."""

    def __init__(
        self,
        price_of: Callable[[DeploymentConfig], float] = lambda d: 0.0,
        rng: random.Random | None = None,
    ) -> None:
        self.loads: dict[str, DeploymentLoad] = {}
        self.price_of = price_of
        self.rng = rng or random.Random()

    def load(self, name: str) -> DeploymentLoad:
        load = self.loads.get(name)
        if load is None:
            load = self.loads[name] = DeploymentLoad()
        return load

    def started(self, name: str) -> None:
        self.load(name).in_flight += 1

    def finished(self, name: str, latency: float | None = None) -> None:
        load = self.load(name)
        load.in_flight = max(0, load.in_flight - 1)
        if latency is not None:
            self.observe_latency(name, latency)

    def observe_latency(self, name: str, seconds: float) -> None:
        load = self.load(name)
        previous = load.latency_ewma
        load.latency_ewma = (
            seconds if previous is None else EWMA_ALPHA * seconds + (1 - EWMA_ALPHA) * previous
        )

    def order(self, model: ModelConfig) -> list[DeploymentConfig]:
        deployments = model.deployments
        if len(deployments) == 1:
            return list(deployments)
        shuffled = self.weighted_shuffle(deployments)
        if model.strategy == "least_busy":
            return sorted(shuffled, key=lambda d: self.load(d.name).in_flight)
        if model.strategy == "latency":
            # Unmeasured deployments go first, so each gets measured once.
            return sorted(shuffled, key=lambda d: self.load(d.name).latency_ewma or 0.0)
        if model.strategy == "cost":
            return sorted(shuffled, key=self.price_of)
        return shuffled

    def weighted_shuffle(self, deployments: list[DeploymentConfig]) -> list[DeploymentConfig]:
        """A weighted random order without replacement (Efraimidis-Spirakis keys); sorts
        are stable, so ties in the other strategies are broken by weight too."""
        keyed = [(self.rng.random() ** (1.0 / d.weight), d) for d in deployments]
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        return [d for _, d in keyed]
