"""Principal: the caller a request runs as, resolved by the auth stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.config.access import BudgetConfig, CapsConfig, ScopeLimits
from gateway.errors import PermissionDenied


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str  # safe to log and to use in state keys; never the key itself
    user: str | None = None
    team: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    allowed_models: frozenset[str] | None = None  # None: every alias
    # What the key carries for limits, caps and budgets (gateway/pipeline/{ratelimit,caps}).
    expires_at: datetime | None = None
    trusted_user: bool = False  # may name the user via the body's `user` or a header
    may_force_variant: bool = False  # may pick an experiment variant (x-gateway-variant)
    limits: ScopeLimits | None = None  # None: limits.default_key applies
    caps: CapsConfig = field(default_factory=CapsConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)

    def may_use(self, alias: str) -> bool:
        return self.allowed_models is None or alias in self.allowed_models

    def require(self, alias: str) -> None:
        """403 unless the key may use `alias` (asked for, or routed to)."""
        if not self.may_use(alias):
            raise PermissionDenied(
                f"This API key may not use the model '{alias}'.", code="model_not_allowed"
            )


# When no keys are configured (the quickstart) every request runs as this principal: there
# is no policy to protect, so it may force variants (for testing).
ANONYMOUS = Principal(key_id="anonymous", may_force_variant=True)
# The admin key used as an API key: every model, may force variants. Its id cannot be a
# configured key's id (those match KEY_ID, without parentheses).
ADMIN = Principal(key_id="(admin)", may_force_variant=True)
