"""Principal: the caller a request runs as, resolved by the auth stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from gateway.config.access import BudgetConfig, CapsConfig, ScopeLimits


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
    limits: ScopeLimits | None = None  # None: limits.default_key applies
    caps: CapsConfig = field(default_factory=CapsConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)

    def may_use(self, alias: str) -> bool:
        return self.allowed_models is None or alias in self.allowed_models


# When no keys are configured (the quickstart) every request runs as this principal.
ANONYMOUS = Principal(key_id="anonymous")
