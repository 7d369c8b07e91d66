"""Runtime: the live objects built from one config (providers, state, the pipeline)."""

from __future__ import annotations

import logging
import time

from gateway.config.schema import GatewayConfig
from gateway.observability.metrics import Metrics
from gateway.pipeline import build_pipeline, compose
from gateway.pipeline.build import Services
from gateway.pipeline.observe import Observe
from gateway.providers.registry import build_providers
from gateway.state import build_state
from gateway.types import Next

log = logging.getLogger("gateway")


class Runtime:
    def __init__(self, config: GatewayConfig, metrics: Metrics | None = None) -> None:
        self.config = config
        self.metrics = metrics or Metrics()
        self.services: Services | None = None
        self.handle: Next | None = None
        self.observe: Observe | None = None
        self.draining = False
        self.started_at = time.time()

    async def start(self) -> None:
        services = Services(
            metrics=self.metrics,
            providers=build_providers(self.config),
            state=build_state(self.config.state),
        )
        stages = build_pipeline(self.config, services)
        self.services = services
        self.observe = next(s for s in stages if isinstance(s, Observe))
        self.handle = compose(stages)
        log.info(
            "gateway started",
            extra={"models": sorted(self.config.models), "state": self.config.state.backend},
        )

    async def stop(self) -> None:
        if self.services is None:
            return
        for provider in self.services.providers.values():
            await provider.aclose()
        await self.services.state.aclose()

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether this instance should get traffic, with the details of each check."""
        checks: dict[str, object] = {"config": "loaded" if self.handle else "not loaded"}
        ready = self.handle is not None and not self.draining
        if self.draining:
            checks["shutdown"] = "draining"
        if self.services is not None:
            state_ok = await self.services.state.ping()
            checks["state"] = f"{self.services.state.kind}: {'ok' if state_ok else 'unreachable'}"
            if not state_ok:
                checks["degraded"] = True
        return ready, checks
