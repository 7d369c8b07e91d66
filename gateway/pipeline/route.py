"""Route: resolve the requested name to a model alias. A name may be an experiment's
(assign a variant, apply its overrides) and a route (classifier and rules pick a
target); the decision is explained in a header, the access log and metrics."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.config.schema import GatewayConfig, ModelConfig
from gateway.context import RequestContext
from gateway.dispatch.prices import prices_of
from gateway.errors import GatewayError, ModelNotFound
from gateway.experiments.assign import Assigner, Assignment, apply_variant
from gateway.experiments.recorder import ExperimentRecorder
from gateway.experiments.store import ExperimentStore
from gateway.observability.metrics import Metrics
from gateway.routing.router import RouteDecision, Router, build_routers
from gateway.types import Next, Reply

if TYPE_CHECKING:
    from gateway.services import Services

ROUTE_HEADER = "x-gateway-route"
EXPERIMENT_HEADER = "x-gateway-experiment"


@dataclass(frozen=True)
class Resolution:
    target: str
    decision: RouteDecision | None = None
    assignment: Assignment | None = None


class Route:
    def __init__(
        self,
        models: Mapping[str, ModelConfig],
        routers: Mapping[str, Router] | None = None,
        assigners: Mapping[str, Assigner] | None = None,
        metrics: Metrics | None = None,
        recorder: ExperimentRecorder | None = None,
    ) -> None:
        self.models = models
        self.routers = routers or {}
        self.assigners = assigners or {}  # by the alias or route they apply to
        self.metrics = metrics
        self.recorder = recorder

    @classmethod
    def build(cls, config: GatewayConfig, services: Services) -> Route:
        experiments = {n: e for n, e in config.experiments.items() if e.enabled}
        recorder = ExperimentRecorder(
            ExperimentStore(services.state),
            services.metrics,
            prices_of(config, services.prices),
            {name: e.feedback_ttl_seconds for name, e in experiments.items()},
        )
        return cls(
            config.models,
            build_routers(config.routes, services.embedder),
            {e.applies_to: Assigner(name, e) for name, e in experiments.items()},
            services.metrics,
            recorder,
        )

    def knows(self, name: str) -> bool:
        return name in self.models or name in self.routers

    async def resolve(self, ctx: RequestContext) -> Resolution:
        """Experiment and route, in whichever order the names lead (each at most once)."""
        name, decision, assignment = ctx.alias, None, None
        for _ in range(2):
            if assignment is None and name in self.assigners:
                assignment = self.assigners[name].assign(ctx)
                ctx.body = apply_variant(ctx.body, assignment.config)
                name = assignment.config.target
            if decision is None and name in self.routers:
                decision = await self.routers[name].decide(ctx)
                name = decision.target
        if name not in self.models:
            raise ModelNotFound(ctx.alias)
        return Resolution(name, decision, assignment)

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        resolution = await self.resolve(ctx)
        ctx.principal.require(resolution.target)  # policy is the target's, not the name's
        ctx.target_alias = resolution.target
        decision, assignment = resolution.decision, resolution.assignment
        if ctx.dry_run:
            ctx.log_fields["dry_run"] = True
            return Reply(body=self.describe(ctx, resolution))
        if decision is not None:
            ctx.response_headers[ROUTE_HEADER] = decision.header
            ctx.log_fields["route"] = decision.header
            if self.metrics is not None:
                self.metrics.routing_decisions.labels(decision.route, decision.target).inc()
        if assignment is None or self.recorder is None:
            return await call_next(ctx)
        return await self.call_in_experiment(ctx, call_next, assignment, self.recorder)

    async def call_in_experiment(
        self,
        ctx: RequestContext,
        call_next: Next,
        assignment: Assignment,
        recorder: ExperimentRecorder,
    ) -> Reply:
        ctx.response_headers[EXPERIMENT_HEADER] = assignment.header
        ctx.log_fields["experiment"] = assignment.experiment
        ctx.log_fields["variant"] = assignment.variant
        # The link is written while the provider works, and is done before the client can
        # see the request id (and send feedback naming it).
        link = asyncio.create_task(recorder.link(ctx, assignment))
        try:
            reply = await call_next(ctx)
        except GatewayError as err:
            await link
            await recorder.finish(ctx, assignment, err.http_status, None)
            raise
        except BaseException:
            link.cancel()
            raise
        await link

        async def record(done: Reply) -> None:
            status = done.error.http_status if done.error is not None else done.status
            await recorder.finish(ctx, assignment, status, done.usage)

        reply.on_complete(record)
        return reply

    def describe(self, ctx: RequestContext, resolution: Resolution) -> dict[str, Any]:
        """The dry-run answer: what would happen, without calling any provider."""
        model = self.models[resolution.target]
        decision, assignment = resolution.decision, resolution.assignment
        return {
            "object": "route.decision",
            "model": ctx.alias,
            "target": resolution.target,
            "route": None
            if decision is None
            else {"name": decision.route, "reason": decision.reason, "header": decision.header},
            "experiment": None
            if assignment is None
            else {
                "name": assignment.experiment,
                "variant": assignment.variant,
                "forced": assignment.forced,
            },
            "strategy": model.strategy,
            "deployments": [d.name for d in model.deployments],
            "fallbacks": list(model.fallbacks),
        }
