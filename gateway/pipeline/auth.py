"""Auth: the client's IP, per-IP limits before key checks, then key -> Principal.

Everything is decided by the generation's Authenticator (gateway/auth/authenticator.py):
missing, unknown, revoked or expired key 401 (counted per IP); here the requested name
must be allowed for the key (403). The route stage checks the alias the request is
finally sent to.
"""

from __future__ import annotations

import dataclasses

from gateway.auth.authenticator import Authenticator
from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.types import Next, Reply


class Auth:
    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator
        self.config = authenticator.config
        # Fixed for the generation: whether the client's IP is looked at (trusted proxies,
        # per-IP limits) and whether keys are.
        limits = authenticator.limits
        self.checks_ip = bool(limits.trusted_proxies) or not limits.ip.empty
        self.keyed = authenticator.keyed

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        authenticator = self.authenticator
        if self.checks_ip:
            ctx.client_ip = authenticator.client_ip(ctx.client_ip, ctx.headers)
            await authenticator.admit(ctx.client_ip)
        if self.keyed:
            principal = authenticator.known_principal(ctx.headers)  # no await: the usual key
            if principal is None:
                principal = await authenticator.principal(ctx.headers, ctx.client_ip)
            if not principal.may_use(ctx.alias):
                authenticator.metrics.auth_failures.labels("forbidden_model").inc()
                principal.require(ctx.alias)
            if principal.trusted_user:
                principal = self.with_user(ctx, principal)
            ctx.principal = principal  # (its key_id goes to the access log)
        return await call_next(ctx)

    def with_user(self, ctx: RequestContext, principal: Principal) -> Principal:
        named = ctx.headers.get(self.config.user_header) or ctx.body.get("user")
        if isinstance(named, str) and named:
            return dataclasses.replace(principal, user=named[:256])
        return principal
