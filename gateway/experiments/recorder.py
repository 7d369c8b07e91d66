"""Record experiment traffic: link a request id to its variant (for feedback) and add
each finished request to its variant's counters and metrics. Never fails a request."""

from __future__ import annotations

import logging

from gateway.accounting.pricing import PriceBook
from gateway.context import RequestContext
from gateway.experiments.assign import Assignment
from gateway.experiments.store import ExperimentStore, Link, Outcome
from gateway.observability.metrics import Metrics, status_class
from gateway.types import Usage

log = logging.getLogger("gateway")


class ExperimentRecorder:
    def __init__(
        self,
        store: ExperimentStore,
        metrics: Metrics,
        prices: PriceBook,
        feedback_ttl: dict[str, float],
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.prices = prices
        self.feedback_ttl = feedback_ttl

    async def link(self, ctx: RequestContext, assignment: Assignment) -> None:
        ttl = self.feedback_ttl[assignment.experiment]
        try:
            link = Link(assignment.experiment, assignment.variant, ctx.principal.key_id)
            await self.store.link(ctx.request_id, link, ttl)
        except Exception:
            log.warning("could not link request to experiment", exc_info=True)

    async def finish(
        self, ctx: RequestContext, assignment: Assignment, status: int, usage: Usage | None
    ) -> None:
        name, variant = assignment.experiment, assignment.variant
        seconds = ctx.elapsed()
        prompt = usage.prompt_tokens if usage else 0
        completion = usage.completion_tokens if usage else 0
        upstream_model = ctx.deployment.partition("/")[2]
        cost = self.prices.cost(ctx.target_alias, upstream_model, prompt, completion)
        m = self.metrics
        m.experiment_requests.labels(name, variant, status_class(status)).inc()
        m.experiment_duration.labels(name, variant).observe(seconds)
        m.experiment_tokens.labels(name, variant, "input").inc(prompt)
        m.experiment_tokens.labels(name, variant, "output").inc(completion)
        outcome = Outcome(status, seconds, prompt, completion, cost)
        try:
            await self.store.record(name, variant, outcome)
        except Exception:
            log.warning("could not record experiment outcome", exc_info=True)
