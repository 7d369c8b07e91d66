"""Runtime: the live objects built from one config (providers, state, the pipeline)."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.cache.lifecycle import cache_backends, shared_embedder
from gateway.config.extras import missing_extras
from gateway.config.load import ConfigError
from gateway.config.schema import GatewayConfig
from gateway.db.setup import system_of_record, with_records
from gateway.dispatch.prices import price_book
from gateway.generations import InFlight, leftovers, retire_when_idle, reuse_providers
from gateway.observability.metrics import Metrics
from gateway.observability.tracing import build_tracing
from gateway.pipeline.access import access_limiter, build_authenticator, prices_requests
from gateway.pipeline.build import build_pipeline, compose
from gateway.pipeline.dispatch import Dispatch
from gateway.pipeline.observe import Observe
from gateway.providers.registry import build_providers
from gateway.services import Services
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
        self.dispatch: Dispatch | None = None  # its breakers feed /ready
        self.draining = False
        self.in_flight = InFlight()
        self.stop_streams = asyncio.Event()  # set near the end of the shutdown grace period
        self.retiring: set[asyncio.Task[None]] = set()  # old pipelines closing when idle
        self.started_at = time.time()

    async def start(self) -> None:
        missing = missing_extras(self.config)  # the CLI checks first; this covers create_app
        if missing:
            raise ConfigError(missing)
        self.activate(self.config, await self.build_services(self.config))
        log.info(
            "gateway started",
            extra={"models": sorted(self.config.models), "state": self.config.state.backend},
        )

    async def build_services(
        self, config: GatewayConfig, previous: Services | None = None
    ) -> Services:
        """Every live object a config needs, built here for both start and reload.
        On reload `previous` lends what did not change (provider pools, the state client)."""
        records = system_of_record(config, self.metrics, previous)
        if previous is None:
            providers = build_providers(config)
            state = with_records(build_state(config.state, self.metrics), records)
        else:
            providers = reuse_providers(self.config, previous.providers, config)
            if config.state == self.config.state:
                state = previous.state
            else:
                state = with_records(build_state(config.state, self.metrics), records)
        tracing = build_tracing(config.tracing, previous.tracing if previous else None)
        if tracing is not None:
            providers = tracing.providers(providers, config.providers)  # a span per attempt
        limiter = await access_limiter(config, self.metrics, state, previous)
        prices = price_book(config, previous.prices if previous else None)
        if prices_requests(config):  # read now, not by the first request it prices
            await asyncio.to_thread(prices.table)
        return Services(
            metrics=self.metrics,
            providers=providers,
            state=state,
            tracing=tracing,
            limiter=limiter,
            authenticator=build_authenticator(config, self.metrics, state, limiter),
            embedder=shared_embedder(config, previous.embedder if previous else None),
            cache=cache_backends(config.cache, state, previous.cache if previous else None),
            records=records,
            prices=prices,
        )

    def activate(self, config: GatewayConfig, services: Services) -> None:
        """Swap in a pipeline at once (no await between the assignments); requests already
        running keep the handle they started on."""
        stages = build_pipeline(config, services)
        self.in_flight = InFlight()
        self.config = config
        self.services = services
        self.observe = next(s for s in stages if isinstance(s, Observe))
        self.dispatch = next(s for s in stages if isinstance(s, Dispatch))
        self.handle = self.in_flight.track(compose(stages, services.tracing), self.stop_streams)

    async def reload(self, config: GatewayConfig) -> None:
        """Swap to an already validated config; the old pipeline's leftovers (changed
        providers, a replaced state client) close once its last request has finished."""
        old_services, old_in_flight = self.services, self.in_flight
        services = await self.build_services(config, old_services)
        self.activate(config, services)
        if old_services is not None:
            closers = leftovers(old_services, services)
            self.retiring.add(retire_when_idle(old_in_flight, closers))

    async def stop(self) -> None:
        if self.retiring:
            await asyncio.wait(self.retiring, timeout=5)
        if self.services is None:
            return
        for provider in self.services.providers.values():
            await provider.aclose()
        await self.services.state.aclose()
        if self.services.limiter is not None:
            await self.services.limiter.aclose()
        if self.services.cache is not None:
            await self.services.cache.aclose()
        if self.services.records is not None:  # last: flushes the final requests' ledger rows
            await self.services.records.aclose()

    async def readiness(self) -> tuple[bool, dict[str, object]]:
        """Whether this instance should get traffic, with the details of each check."""
        checks: dict[str, object] = {"config": "loaded" if self.handle else "not loaded"}
        ready = self.handle is not None and not self.draining
        if self.draining:
            checks["shutdown"] = "draining"
        missing = missing_extras(self.config)  # a configured feature that cannot work
        if missing:
            checks["features"] = missing
            ready = False
        if self.services is not None:
            state_ok = await self.services.state.ping()
            checks["state"] = f"{self.services.state.kind}: {'ok' if state_ok else 'unreachable'}"
            if not state_ok:
                checks["degraded"] = True
            records = self.services.records  # down: the ledger queues, requests go on
            if records is not None and not await records.database.ping():
                checks["database"] = "unreachable"
                checks["degraded"] = True
            limiter = self.services.limiter
            if limiter is not None and limiter.health():
                checks["ratelimit"] = limiter.health()
                checks["degraded"] = True
        if self.dispatch is not None:
            deployments = self.dispatch.health()
            checks["deployments"] = deployments
            if "open" in deployments.values():
                checks["degraded"] = True
        return ready, checks
