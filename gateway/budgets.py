"""Spend per key and per team, per UTC day and month, in the state backend.

Budgets are checked before a call against the spend so far and debited when the reply
completes with its real (or, for a cut stream, estimated) usage. Calls already running
when a budget runs out may finish, so spend can pass a budget by those calls; the next
request is refused (429 insufficient_quota), as OpenAI does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.auth.principal import Principal
from gateway.config.access import BudgetConfig
from gateway.errors import QuotaExceeded
from gateway.state import StateBackend

RETENTION_SECONDS = 40 * 86400  # a month's counters outlive the month a little
PERIODS = ("day", "month")


def period_ids(now: datetime | None = None) -> dict[str, str]:
    now = now or datetime.now(UTC)
    return {"day": now.strftime("%Y-%m-%d"), "month": now.strftime("%Y-%m")}


def spend_key(scope: str, name: str, period: str, period_id: str) -> str:
    return f"spend:{scope}:{name}:{period}:{period_id}"


class SpendStore:
    def __init__(self, state: StateBackend, teams: dict[str, BudgetConfig]) -> None:
        self.state = state
        self.teams = teams

    def scopes(self, principal: Principal) -> list[tuple[str, str, BudgetConfig]]:
        """(scope, name, budget) for the key and its team, each only if it has a budget."""
        out = []
        if not principal.budget.empty:
            out.append(("key", principal.key_id, principal.budget))
        team_budget = self.teams.get(principal.team or "")
        if team_budget is not None and not team_budget.empty:
            out.append(("team", principal.team or "", team_budget))
        return out

    async def check(self, principal: Principal) -> None:
        """Raise QuotaExceeded when the key's or its team's budget is used up."""
        scopes = self.scopes(principal)
        if not scopes:
            return
        ids = period_ids()
        keys = [spend_key(s, n, p, ids[p]) for s, n, _ in scopes for p in PERIODS]
        spent = await self.state.hgetall_many(keys)
        for i, (scope, _, budget) in enumerate(scopes):
            for j, period in enumerate(PERIODS):
                used = spent[2 * i + j]
                exhausted = _exhausted(budget, period, used)
                if exhausted:
                    raise QuotaExceeded(
                        f"The {scope} has used its {exhausted} budget for this {period}.",
                        param=scope,
                    )

    async def record(self, principal: Principal, tokens: int, usd: float) -> None:
        ids = period_ids()
        names = [("key", principal.key_id)]
        if principal.team:
            names.append(("team", principal.team))
        amounts = {"tokens": float(tokens), "usd": usd, "requests": 1.0}
        updates = {
            spend_key(scope, name, period, ids[period]): amounts
            for scope, name in names
            for period in PERIODS
        }
        await self.state.hincr_many(updates, ttl=RETENTION_SECONDS)

    async def usage(self, scope: str, name: str) -> dict[str, dict[str, float]]:
        ids = period_ids()
        keys = [spend_key(scope, name, p, ids[p]) for p in PERIODS]
        spent = await self.state.hgetall_many(keys)
        fields = ("tokens", "usd", "requests")
        return {
            period: {"period": ids[period], **{f: used.get(f, 0.0) for f in fields}}
            for period, used in zip(PERIODS, spent, strict=True)
        }


def _exhausted(budget: BudgetConfig, period: str, used: dict[str, float]) -> str | None:
    token_limit = getattr(budget, f"tokens_per_{period}")
    if token_limit is not None and used.get("tokens", 0.0) >= token_limit:
        return "token"
    usd_limit = getattr(budget, f"usd_per_{period}")
    if usd_limit is not None and used.get("usd", 0.0) >= usd_limit:
        return "cost"
    return None
