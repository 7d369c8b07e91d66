"""Observe: the outermost stage. Sees every outcome, turns errors into replies,
times the request, and records metrics and the access log when the reply completes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.auth.principal import ANONYMOUS
from gateway.context import RequestContext
from gateway.errors import GatewayError
from gateway.observability.logging import AccessLog
from gateway.observability.metrics import Metrics, status_class
from gateway.observability.prompts import completion_text, prompt_text
from gateway.types import Next, Reply

requests_log = AccessLog(logging.getLogger("gateway.access"))
errors_log = logging.getLogger("gateway")


def endpoint_label(ctx: RequestContext) -> str:
    """The endpoint as the client called it: other ingress formats run as chat."""
    return ctx.endpoint if ctx.ingress == "openai" else ctx.ingress


def error_reply(err: GatewayError) -> Reply:
    return Reply(body=err.to_body(), status=err.http_status, headers=dict(err.headers), error=err)


class ModelSeries:
    """The metric children of one (endpoint, model): `labels()` lookups cost more than
    the observations themselves on the hot path, so they are resolved once."""

    def __init__(self, metrics: Metrics, endpoint: str, model: str) -> None:
        self._requests = metrics.requests
        self._labels = (endpoint, model)
        self._by_status: dict[str, Any] = {}
        self.duration = metrics.request_duration.labels(endpoint, model)
        self.ttft = metrics.time_to_first_token.labels(model)
        self.tokens_in = metrics.tokens.labels(model, "input")
        self.tokens_out = metrics.tokens.labels(model, "output")

    def count(self, status: int) -> None:
        cls = status_class(status)
        child = self._by_status.get(cls)
        if child is None:
            child = self._by_status[cls] = self._requests.labels(*self._labels, cls)
        child.inc()


class Observe:
    def __init__(
        self,
        metrics: Metrics,
        *,
        access_log: bool,
        log_prompts: bool = False,
        ledger: Callable[[RequestContext, Reply], None] | None = None,
        aliases: frozenset[str] = frozenset(),
    ) -> None:
        self.metrics = metrics
        self.ledger = ledger  # queues the usage-ledger row of each finished request
        # The configured model aliases and routes: the only model label values (a refused
        # request is counted under the alias it asked for when that alias exists).
        self.aliases = aliases
        self.access_log = access_log
        self.log_prompts = log_prompts  # prompt/completion text in the access log
        self._series: dict[tuple[str, str], ModelSeries] = {}
        self._overhead = {
            e: metrics.overhead.labels(e)
            for e in ("chat", "completions", "embeddings", "responses", "anthropic")
        }

    def series(self, endpoint: str, model: str) -> ModelSeries:
        key = (endpoint, model)
        found = self._series.get(key)
        if found is None:
            found = self._series[key] = ModelSeries(self.metrics, endpoint, model)
        return found

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        self.metrics.in_flight.inc()
        try:
            reply = await call_next(ctx)
        except GatewayError as err:
            reply = error_reply(err)
        except Exception:
            errors_log.exception("unhandled error", extra={"request_id": ctx.request_id})
            reply = error_reply(GatewayError("The gateway failed to handle this request."))
        # The gateway's own time until the reply (or a stream's first event): everything
        # but the waits on providers; retry backoff counts as the gateway's (README).
        overhead = max(0.0, ctx.elapsed() - ctx.upstream_seconds)
        overhead_ms = round(overhead * 1000, 2)
        ctx.response_headers["x-gateway-overhead-ms"] = f"{overhead_ms:.2f}"
        self._overhead[endpoint_label(ctx)].observe(overhead)

        streamed: list[dict[str, Any]] = []
        if self.log_prompts and reply.is_stream:
            reply.tap(streamed.append)  # the completion text is logged when it ends

        async def record(done: Reply) -> None:
            self.metrics.in_flight.dec()
            self.record(ctx, done, overhead_ms, streamed)

        reply.on_complete(record)
        return reply

    def reject(self, ctx: RequestContext, err: GatewayError) -> Reply:
        """A request refused before the pipeline (unparseable body): still logged and counted."""
        reply = error_reply(err)

        async def record(done: Reply) -> None:
            self.record(ctx, done)

        reply.on_complete(record)
        return reply

    def record(
        self,
        ctx: RequestContext,
        reply: Reply,
        overhead_ms: float | None = None,
        streamed: list[dict[str, Any]] | None = None,
    ) -> None:
        if self.ledger is not None:
            self.ledger(ctx, reply)
        duration = ctx.elapsed()
        # Only configured aliases become label values: a client must not mint new series.
        known = ctx.target_alias or ctx.alias in self.aliases
        model = ctx.alias if known else "unknown"
        series = self.series(endpoint_label(ctx), model)
        series.count(reply.status)
        series.duration.observe(duration)
        ttft = None
        if ctx.first_byte is not None:
            ttft = ctx.first_byte - ctx.started
            series.ttft.observe(ttft)
        usage = reply.usage
        if usage is not None:
            series.tokens_in.inc(usage.prompt_tokens)
            series.tokens_out.inc(usage.completion_tokens)
        if not self.access_log:
            return
        endpoint = endpoint_label(ctx)
        entry = {
            "request_id": ctx.request_id,
            "endpoint": endpoint,
            "model": ctx.alias,
            "deployment": ctx.deployment,
            "status": reply.status,
            "stream": ctx.stream,
            "duration_ms": round(duration * 1000, 2),
            "ttft_ms": None if ttft is None else round(ttft * 1000, 2),
            "overhead_ms": overhead_ms,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "tokens_estimated": usage.estimated if usage else None,
            "completed": reply.completed or not (reply.is_stream or ctx.client_gone),
            "client_ip": ctx.client_ip,
        }
        # Every string of `entry`, checked for secrets (its names are safe, the rest scalars).
        texts = [ctx.request_id, endpoint, ctx.alias, ctx.deployment, ctx.client_ip]
        if ctx.principal is not ANONYMOUS:
            entry["key_id"] = ctx.principal.key_id
            texts.append(ctx.principal.key_id)
        if reply.error is not None:
            entry["error_type"] = reply.error.error_type
            entry["error"] = reply.error.message
            texts += (reply.error.error_type, reply.error.message)
        if self.log_prompts:
            prompt = entry["prompt"] = prompt_text(ctx.request)
            completion = entry["completion"] = completion_text(reply, streamed or [])
            texts += (text for text in (prompt, completion) if text is not None)
        requests_log.info("request", entry, texts, ctx.log_fields)
