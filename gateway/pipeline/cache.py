"""Cache: answer from the exact cache, then the semantic one; on a miss call on and store
the reply when it completes, if it is complete and successful.

Per request: `Cache-Control: no-cache` skips the lookup but still stores, `no-store`
does neither; the TTL header (`x-gateway-cache-ttl: seconds`) sets how long the stored
entry lives. A model with `cache: false` or a key whose metadata says `cache: false` is
bypassed. The response header `x-gateway-cache` says hit, semantic-hit;similarity=…,
miss or bypass.

A hit is a reply like any other for the stages around: request rate limits already
counted it, and it records zero upstream tokens unless `cache.hits_count_tokens` (the body
still reports the cached usage, as the client expects). With `cache.hits_count_requests:
false` a hit gives its request charge back to the ratelimit stage's rules (through the
shared limiter, so every instance sees it); the per-IP limit, an abuse guard, still counts.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from gateway.cache.assemble import assemble
from gateway.cache.exact import ExactCache
from gateway.cache.factory import build_semantic_cache
from gateway.cache.keys import exact_key, semantic_scope
from gateway.cache.lifecycle import cache_backends
from gateway.cache.replay import replay
from gateway.cache.rules import qualifies_for_semantic, storable_body
from gateway.cache.semantic import SemanticCache
from gateway.config.access import LimitsConfig
from gateway.config.cache import CacheConfig
from gateway.config.schema import GatewayConfig, ModelConfig
from gateway.context import RequestContext
from gateway.errors import InvalidRequest
from gateway.observability.metrics import Metrics
from gateway.pipeline.access import uses_limits
from gateway.ratelimit.limiter import Limiter
from gateway.ratelimit.rules import request_rules
from gateway.types import Next, Reply, Stage, Usage

if TYPE_CHECKING:
    from gateway.services import Services

HEADER = "x-gateway-cache"
REMAINING_REQUESTS = b"x-ratelimit-remaining-requests"
CACHEABLE_ENDPOINTS = frozenset({"chat", "completions"})
Refund = tuple[LimitsConfig, Limiter]  # the limits whose request charge a hit gives back


@dataclass(slots=True)
class Directives:
    lookup: bool = True
    store: bool = True
    ttl: float | None = None


class Cache:
    def __init__(
        self,
        config: CacheConfig,
        models: Mapping[str, ModelConfig],
        exact: ExactCache,
        semantic: SemanticCache | None,
        metrics: Metrics,
        refund: Refund | None = None,
    ) -> None:
        self.config = config
        self.exact = exact
        self.semantic = semantic
        self.metrics = metrics
        self.refund = refund  # the limits whose request charge a hit gives back
        self.deployments = {
            alias: tuple(d.name for d in model.deployments) for alias, model in models.items()
        }
        self.models = models

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        directives = self.directives(ctx)
        model = ctx.target_alias
        if directives is None:
            self.metrics.cache_lookups.labels(model, "exact", "bypass").inc()
            ctx.response_headers[HEADER] = ctx.log_fields["cache"] = "bypass"
            return await call_next(ctx)
        deployments = self.deployments.get(model, ())
        key = exact_key(ctx, deployments, self.config.exact.scope)
        if directives.lookup and self.exact.kind != "disabled":
            hit = self.hit(ctx, await self.exact.get(key), "hit")
            self.metrics.cache_lookups.labels(model, "exact", "hit" if hit else "miss").inc()
            if hit is not None:
                await self.give_back_request(ctx)
                return hit
        elif not directives.lookup:
            self.metrics.cache_lookups.labels(model, "exact", "bypass").inc()
        semantic = await self.semantic_lookup(ctx, deployments, directives)
        if isinstance(semantic, Reply):
            await self.give_back_request(ctx)
            return semantic
        ctx.response_headers[HEADER] = ctx.log_fields["cache"] = "miss"
        reply = await call_next(ctx)
        if directives.store:
            self.store_on_complete(ctx, reply, key, directives, semantic)
        return reply

    async def give_back_request(self, ctx: RequestContext) -> None:
        """Return the hit's request charge (`hits_count_requests: false`), and say so in the
        x-ratelimit-remaining-requests header the ratelimit stage set."""
        if self.refund is None:
            return
        limits, limiter = self.refund
        rules = [rule for rule in request_rules(limits, ctx) if rule.kind == "requests"]
        if not rules:
            return
        await limiter.add([(rule, -1) for rule in rules])
        headers = ctx.encoded_headers
        for i, (name, remaining) in enumerate(headers):
            if name == REMAINING_REQUESTS and remaining.isdigit():
                headers[i] = (name, b"%d" % (int(remaining) + 1))

    def directives(self, ctx: RequestContext) -> Directives | None:
        """What this request allows; None when the cache is bypassed altogether."""
        model = self.models.get(ctx.target_alias)
        if ctx.endpoint not in CACHEABLE_ENDPOINTS or model is None or not model.cache:
            return None
        if ctx.principal.metadata.get("cache") is False:
            return None
        control = {part.strip().lower() for part in ctx.headers.get("cache-control", "").split(",")}
        if "no-store" in control:
            return None
        several = ctx.body.get("n") not in (None, 1) or ctx.body.get("best_of") not in (None, 1)
        return Directives(
            lookup="no-cache" not in control,
            store=self.config.exact.store_n_gt_1 or not several,
            ttl=self.ttl_header(ctx),
        )

    def ttl_header(self, ctx: RequestContext) -> float | None:
        name = self.config.ttl_header
        given = ctx.headers.get(name)
        if given is None:
            return None
        try:
            ttl = float(given)
        except ValueError:
            ttl = -1.0
        if not 0 < ttl <= 365 * 86400:
            raise InvalidRequest(f"The {name} header must be a number of seconds (0 < ttl).")
        return ttl

    async def semantic_lookup(
        self, ctx: RequestContext, deployments: tuple[str, ...], directives: Directives
    ) -> Reply | _SemanticPending | None:
        semantic = self.semantic
        if semantic is None or not qualifies_for_semantic(ctx, self.config.semantic):
            return None
        pending = _SemanticPending(
            semantic_scope(ctx, deployments, self.config.exact.scope),
            ctx.request.newest_user_text(),
        )
        if not directives.lookup:
            return pending
        pending.vector, busy = await semantic.embed(pending.text)
        if pending.vector is None:
            if not busy:
                return None
            self.metrics.cache_lookups.labels(ctx.target_alias, "semantic", "busy").inc()
            return pending  # stored after the reply if the embedder catches up
        hit, best = await semantic.lookup(pending.scope, pending.text, pending.vector)
        if best is not None:
            self.metrics.cache_similarity.observe(best)
        result = "hit" if hit else "miss"
        self.metrics.cache_lookups.labels(ctx.target_alias, "semantic", result).inc()
        served = hit and self.hit(ctx, hit.value, f"semantic-hit;similarity={hit.similarity:.3f}")
        return served or pending

    def hit(self, ctx: RequestContext, raw: bytes | None, header: str) -> Reply | None:
        """The reply for a cached entry; None for no entry (or an unreadable one)."""
        if raw is None:
            return None
        try:
            body: dict[str, Any] = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
        body["id"] = f"{_id_prefix(body)}{ctx.request_id}"
        body["created"] = int(time.time())
        ctx.response_headers[HEADER] = header
        ctx.log_fields["cache"] = header.split(";", 1)[0]
        cached_usage = Usage.from_openai(body.get("usage")) or Usage()
        recorded = cached_usage if self.config.hits_count_tokens else Usage()
        if not ctx.stream:
            return Reply(body=body, usage=recorded)
        reply = Reply(usage=recorded)

        def record_usage() -> None:  # the relay sets the usage chunk's usage; undo that
            reply.usage = recorded

        reply.stream = replay(body, include_usage=ctx.client_wants_usage, on_end=record_usage)
        return reply

    def store_on_complete(
        self,
        ctx: RequestContext,
        reply: Reply,
        key: str,
        directives: Directives,
        semantic: _SemanticPending | None,
    ) -> None:
        streamed: list[dict[str, Any]] = []
        if reply.is_stream:
            reply.tap(streamed.append)

        async def store(done: Reply) -> None:
            body = self.complete_body(done, streamed)
            if body is None:
                return
            raw = orjson.dumps(body)
            if len(raw) > self.config.exact.max_entry_bytes:
                return
            if self.exact.kind != "disabled":
                ttl = directives.ttl or self.config.exact.ttl_seconds
                await self.exact.put(key, raw, ttl)
                self.metrics.cache_stores.labels("exact").inc()
            if semantic is not None and self.semantic is not None:
                await self.store_semantic(semantic, body, raw, directives)

        reply.on_complete(store)

    def complete_body(self, reply: Reply, streamed: list[dict[str, Any]]) -> dict[str, Any] | None:
        if reply.error is not None or reply.status != 200:
            return None
        if reply.is_stream:
            if not reply.completed:
                return None
            body = assemble(streamed, reply.usage)
        else:
            body = reply.body
        return storable_body(body, allow_n=self.config.exact.store_n_gt_1)

    async def store_semantic(
        self, pending: _SemanticPending, body: dict[str, Any], raw: bytes, directives: Directives
    ) -> None:
        assert self.semantic is not None
        choices = body.get("choices") or []
        if len(choices) != 1 or choices[0].get("finish_reason") != "stop":
            return
        message = choices[0].get("message") or {}
        if message.get("tool_calls") or message.get("function_call"):
            return
        if pending.vector is None:
            pending.vector, _ = await self.semantic.embed(pending.text)
            if pending.vector is None:
                return
        ttl = directives.ttl or self.config.semantic.ttl_seconds
        await self.semantic.add(pending.scope, pending.text, pending.vector, raw, ttl)
        self.metrics.cache_stores.labels("semantic").inc()


@dataclass(slots=True)
class _SemanticPending:
    """A semantic miss, carried to the store: its scope, text and (once made) vector."""

    scope: str
    text: str
    vector: Any = None


def _id_prefix(body: dict[str, Any]) -> str:
    return "chatcmpl-" if body.get("object") == "chat.completion" else "cmpl-"


def cache_stages(config: GatewayConfig, services: Services) -> list[Stage]:
    """The cache stage when `cache.enabled`; no stage at all otherwise. Its backends and
    the local embedder are the services' (kept across reloads, closed by the runtime)."""
    cache = config.cache
    if not cache.enabled:
        return []
    backends = services.cache or cache_backends(cache, services.state, None)
    assert backends is not None
    semantic = build_semantic_cache(
        cache.semantic, config.models, services.providers, backends.store, services.embedder
    )
    refund = None
    if not cache.hits_count_requests and services.limiter is not None and uses_limits(config):
        refund = (config.limits, services.limiter)
    return [Cache(cache, config.models, backends.exact, semantic, services.metrics, refund)]
