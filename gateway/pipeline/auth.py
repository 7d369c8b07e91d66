"""Auth: the client's IP, per-IP limits before key checks, then key -> Principal.

Accepts `Authorization: Bearer <key>`, `x-api-key` and `api-key`. Missing, unknown,
revoked or expired key: 401; key not allowed for the model: 403. Failed attempts are
counted per IP (shared through the limiter); an IP over `limits.failed_auth_ip` gets 429,
and this instance refuses it before looking at keys until the window frees room.
Keys are never logged: logs carry the key id.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address

from gateway.auth.keys import KeyStore
from gateway.auth.principal import Principal
from gateway.config.access import AuthConfig, LimitsConfig, ScopeLimits
from gateway.context import RequestContext
from gateway.errors import AuthenticationFailed, GatewayError, PermissionDenied, RateLimited
from gateway.limiter import Limiter, LimiterUnavailable
from gateway.observability.metrics import Metrics
from gateway.pipeline.ratelimit import ratelimit_headers, refusal, rules_for
from gateway.types import Next, Reply

log = logging.getLogger("gateway")
Network = IPv4Network | IPv6Network
BLOCKED_IPS_LIMIT = 10_000


def client_ip(peer: str, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The socket peer, or the last untrusted hop of X-Forwarded-For when the peer is trusted."""
    if not trusted or not forwarded_for or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop if _valid(hop) else peer
    return hops[0] if hops and _valid(hops[0]) else peer


def presented_key(headers: dict[str, str]) -> str | None:
    auth = headers.get("authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return headers.get("x-api-key") or headers.get("api-key") or None


class Auth:
    def __init__(
        self,
        config: AuthConfig,
        limits: LimitsConfig,
        keys: KeyStore,
        limiter: Limiter,
        metrics: Metrics,
    ) -> None:
        self.config = config
        self.limits = limits
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics
        self.blocked: dict[str, float] = {}  # ip -> monotonic time its failed-auth block ends

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        await self.admit(ctx)
        if self.config.enabled:
            ctx.principal = await self.authenticate(ctx)
            ctx.log_fields["key_id"] = ctx.principal.key_id
        return await call_next(ctx)

    async def admit(self, ctx: RequestContext) -> None:
        """The client's real IP, and its per-IP request limits (before any key check)."""
        ctx.client_ip = client_ip(
            ctx.client_ip, ctx.headers.get("x-forwarded-for"), self.limits.trusted_proxies
        )
        if not self.limits.ip.empty:
            await self.limit_ip(ctx)

    async def limit_ip(self, ctx: RequestContext) -> None:
        rules = [r for r in rules_for("ip", ctx.client_ip, self.limits.ip) if r.kind == "requests"]
        decision = await self.limiter.acquire([(r, 1) for r in rules], self.limits.on_backend_error)
        if not decision.allowed:
            raise refusal(decision)

    async def authenticate(self, ctx: RequestContext) -> Principal:
        principal = await self.identify(ctx)
        if not principal.may_use(ctx.alias):
            self.metrics.auth_failures.labels("forbidden_model").inc()
            raise PermissionDenied(
                f"This API key may not use the model '{ctx.alias}'.", code="model_not_allowed"
            )
        return self.with_user(ctx, principal)

    async def identify(self, ctx: RequestContext) -> Principal:
        """The presented key's principal; 401 (counted per IP) when missing, unknown, expired."""
        ip = ctx.client_ip
        until = self.blocked.get(ip)
        if until is not None:
            if until > time.monotonic():
                raise self.too_many(until)
            del self.blocked[ip]
        key = presented_key(ctx.headers)
        if key is None:
            await self.fail(ip, "missing", "Missing API key: send 'Authorization: Bearer <key>'.")
        try:
            principal = await self.keys.lookup(key or "")
        except Exception:
            self.metrics.redis_errors.labels("auth").inc()
            log.warning("key lookup failed: state backend unreachable", exc_info=True)
            raise LimiterUnavailable("Cannot verify the API key right now; try again.") from None
        if principal is None:
            await self.fail(ip, "unknown", "Invalid API key.")
        assert principal is not None
        if principal.expires_at is not None and _expired(principal.expires_at):
            await self.fail(ip, "expired", "The API key has expired.")
        return principal

    def with_user(self, ctx: RequestContext, principal: Principal) -> Principal:
        if not principal.trusted_user:
            return principal
        named = ctx.headers.get(self.config.user_header) or ctx.body.get("user")
        if isinstance(named, str) and named:
            return dataclasses.replace(principal, user=named[:256])
        return principal

    async def fail(self, ip: str, reason: str, message: str) -> None:
        self.metrics.auth_failures.labels(reason).inc()
        rules = rules_for("failed_auth", ip, ScopeLimits(requests=self.limits.failed_auth_ip))
        if rules:
            decision = await self.limiter.acquire([(r, 1) for r in rules])
            if not decision.allowed:
                err = refusal(decision)
                if len(self.blocked) >= BLOCKED_IPS_LIMIT:
                    self.blocked.clear()
                self.blocked[ip] = time.monotonic() + float(err.headers["retry-after"])
                raise err
        raise AuthenticationFailed(message, code="invalid_api_key")

    def too_many(self, until: float) -> GatewayError:
        retry = max(1, int(until - time.monotonic()) + 1)
        return RateLimited(
            f"Too many failed authentication attempts. Try again in {retry}s.",
            code="rate_limit_exceeded_failed_auth",
            headers={"retry-after": str(retry), **ratelimit_headers([])},
        )


def _expired(expires_at: datetime) -> bool:
    if expires_at.tzinfo is None:  # a naive time in the config means UTC
        expires_at = expires_at.replace(tzinfo=UTC)
    return expires_at <= datetime.now(UTC)


def _in(address: str, networks: list[Network]) -> bool:
    try:
        ip = ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def _valid(address: str) -> bool:
    try:
        ip_address(address)
    except ValueError:
        return False
    return True
