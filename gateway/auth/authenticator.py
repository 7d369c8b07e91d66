"""The one Authenticator: who is calling, for the pipeline and every HTTP handler.

It reads the presented key (`Authorization: Bearer`, `x-api-key`, `api-key`), the client's
IP (believing X-Forwarded-For only from `limits.trusted_proxies`), applies the per-IP
request limits, resolves the key through the KeyStore (expiry included) and counts failed
attempts per IP, for API keys and the admin key alike. One is built per config generation
(`Services.authenticator`), so a reload swaps keys, admin key and limits together.

Failed attempts: an IP over `limits.failed_auth_ip` gets 429 for its *failed* attempts
until the window frees room; a valid key from that IP still works (clients behind one
load balancer share an IP). Keys are never logged: logs carry the key id.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import NoReturn

from gateway.auth.keys import KeyStore
from gateway.auth.principal import ADMIN, ANONYMOUS, Principal
from gateway.config.access import AuthConfig, LimitsConfig, ScopeLimits
from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    LimiterUnavailable,
    PermissionDenied,
    RateLimited,
)
from gateway.observability.metrics import Metrics
from gateway.ratelimit.headers import refusal
from gateway.ratelimit.limiter import Limiter
from gateway.ratelimit.rules import rules_for
from gateway.state import StateBackend

log = logging.getLogger("gateway")
Network = IPv4Network | IPv6Network
BLOCKED_IPS_LIMIT = 10_000
INVALID_ADMIN_KEY = "A valid admin key is required."


def client_ip(peer: str, forwarded_for: str | None, trusted: list[Network]) -> str:
    """The socket peer, or the last untrusted hop of X-Forwarded-For when the peer is trusted."""
    if not trusted or not forwarded_for or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop if _valid(hop) else peer
    return hops[0] if hops and _valid(hops[0]) else peer


def presented_key(headers: Mapping[str, str]) -> str | None:
    auth = headers.get("authorization")
    if auth is not None and auth[:7].lower() == "bearer ":
        key = auth[7:].strip()
        if key:
            return key
    return headers.get("x-api-key") or headers.get("api-key") or None


def same_secret(given: str | None, secret: str) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    return hmac.compare_digest((given or "").encode(), secret.encode())


class Authenticator:
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
        self.keyed = config.enabled  # (a property of the config: read once, not per request)

    @classmethod
    def build(
        cls,
        config: AuthConfig,
        limits: LimitsConfig,
        state: StateBackend,
        limiter: Limiter,
        metrics: Metrics,
    ) -> Authenticator:
        return cls(config, limits, KeyStore(config, state), limiter, metrics)

    @property
    def guards(self) -> bool:
        """Whether requests need this at all: keys, an admin key, per-IP limits or proxies."""
        limits = self.limits
        return self.config.enabled or not limits.ip.empty or bool(limits.trusted_proxies)

    def client_ip(self, peer: str, headers: Mapping[str, str]) -> str:
        return client_ip(peer, headers.get("x-forwarded-for"), self.limits.trusted_proxies)

    async def admit(self, ip: str) -> None:
        """The per-IP request limits (`limits.ip`), before any key is looked at."""
        if self.limits.ip.empty:
            return
        rules = [r for r in rules_for("ip", ip, self.limits.ip) if r.kind == "requests"]
        decision = await self.limiter.acquire([(r, 1) for r in rules], self.limits.on_backend_error)
        if not decision.allowed:
            raise refusal(decision)

    async def principal(self, headers: Mapping[str, str], ip: str) -> Principal:
        """The caller: ANONYMOUS without keys; else the key's principal (or the admin's), or
        401 (counted per IP) when missing, unknown or expired."""
        if not self.keyed:
            return ANONYMOUS
        key = presented_key(headers)
        if key is None:
            await self.fail(ip, "missing", "Missing API key: send 'Authorization: Bearer <key>'.")
        assert key is not None
        principal = await self.lookup(key)
        if principal is None:
            await self.fail(ip, "unknown", "Invalid API key.")
        assert principal is not None
        if principal.expires_at is not None and _expired(principal.expires_at):
            await self.fail(ip, "expired", "Invalid API key.")  # as unknown: no oracle
        return principal

    def known_principal(self, headers: Mapping[str, str]) -> Principal | None:
        """`principal` with no await, when the presented key is one this process knows
        (the admin key, a YAML key, one looked up lately) and has not expired; None in
        every other case, which `principal` then decides (and counts when it fails)."""
        key = presented_key(headers)
        if key is None:
            return None
        admin = self.config.admin_key
        if admin is not None and same_secret(key, admin.get_secret_value()):
            return ADMIN
        principal = self.keys.known(key)
        if principal is None or (
            principal.expires_at is not None and _expired(principal.expires_at)
        ):
            return None
        return principal

    async def lookup(self, key: str) -> Principal | None:
        admin = self.config.admin_key
        if admin is not None and same_secret(key, admin.get_secret_value()):
            return ADMIN
        try:
            return await self.keys.lookup(key)
        except Exception:
            self.metrics.redis_errors.labels("auth").inc()
            log.warning("key lookup failed: state backend unreachable", exc_info=True)
            raise LimiterUnavailable("Cannot verify the API key right now; try again.") from None

    async def admin(self, headers: Mapping[str, str], ip: str) -> None:
        """Return when the request bears the admin key. No admin key configured: 403
        `admin_disabled`; anything else (missing, unknown, another key): one 401, counted."""
        secret = self.config.admin_key
        if secret is None:
            raise PermissionDenied(
                "The admin API is disabled: set auth.admin_key to enable it.",
                code="admin_disabled",
            )
        if not same_secret(presented_key(headers), secret.get_secret_value()):
            await self.fail(ip, "admin", INVALID_ADMIN_KEY, code="invalid_admin_key")

    async def fail(
        self, ip: str, reason: str, message: str, code: str = "invalid_api_key"
    ) -> NoReturn:
        """Count a failed attempt from `ip`: 401, or 429 once the IP is over its limit."""
        self.metrics.auth_failures.labels(reason).inc()
        until = self.blocked.get(ip)
        if until is not None:
            if until > time.monotonic():
                raise self.too_many(until)
            del self.blocked[ip]
        rules = rules_for("failed_auth", ip, ScopeLimits(requests=self.limits.failed_auth_ip))
        if rules:
            decision = await self.limiter.acquire([(r, 1) for r in rules])
            if not decision.allowed:
                err = refusal(decision)
                if len(self.blocked) >= BLOCKED_IPS_LIMIT:
                    self.blocked.clear()
                self.blocked[ip] = time.monotonic() + float(err.headers["retry-after"])
                raise err
        raise AuthenticationFailed(message, code=code)

    def too_many(self, until: float) -> GatewayError:
        retry = max(1, int(until - time.monotonic()) + 1)
        return RateLimited(
            f"Too many failed authentication attempts. Try again in {retry}s.",
            code="rate_limit_exceeded_failed_auth",
            headers={"retry-after": str(retry)},
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
