"""Spend per key and per team, per UTC day and month, in the state backend; exact budgets.

Before a call, the request's maximum cost is *reserved* against every budget it falls
under (the key's and its team's, day and month), atomically in one Lua call on Redis
(gateway/state/reserve_script.py) or one step in memory: `spent + reserved by calls in
flight + this request's maximum <= budget`, else 429 insufficient_quota and nothing is
reserved. The maximum is the prompt estimate plus the output bound (x choices) at the
most expensive deployment the request may be sent to (gateway/accounting/budget_cost.py). When the
reply completes, the reservation is replaced by the real cost (`settle`), which is
written at once or queued and retried (gateway/state/retry_queue.py): no reply goes
unrecorded.

The bound. Spend can pass a budget only by what real usage adds over the reservation:
  overshoot <= sum over the calls in flight of
      (real prompt tokens - estimated prompt tokens) x input price
    + (completion tokens past the output bound) x output price
The prompt estimate counts the request with the tokenizer (the same count as token
limits), so the first term is the tokenizer's error on the provider's prompt template,
a few tokens per message; the second is zero for a provider that honours `max_tokens`.
A request with no output bound (no `max_tokens`, no cap default) is reserved at the
model's maximum output from the price map, else at UNBOUNDED_OUTPUT tokens: set a cap
default (`caps.models.<alias>.default_max_tokens`) for an exact bound. Reservations of a
process that dies mid-call stay held until the day's or month's counter expires (budgets
then refuse early, they never overspend). If the state backend is unreachable, budgets
fail open (the request is served; its real cost is queued and written when Redis is back).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from gateway.accounting.teams import TeamPolicies
from gateway.auth.principal import Principal
from gateway.config.access import BudgetConfig
from gateway.errors import QuotaExceeded
from gateway.state import StateBackend
from gateway.state.backend import Hold

RETENTION_SECONDS = 40 * 86400  # a month's counters outlive the month a little
PERIODS = ("day", "month")


def period_ids(now: datetime | None = None) -> dict[str, str]:
    if now is None:
        return _current_periods()
    return {"day": now.strftime("%Y-%m-%d"), "month": now.strftime("%Y-%m")}


_periods: tuple[int, dict[str, str]] = (-1, {})


def _current_periods() -> dict[str, str]:
    """Today's ids, formatted once per second rather than twice per request."""
    global _periods
    second = int(time.time())
    if _periods[0] != second:
        now = datetime.fromtimestamp(second, UTC)
        _periods = (second, {"day": now.strftime("%Y-%m-%d"), "month": now.strftime("%Y-%m")})
    return _periods[1]


def spend_key(scope: str, name: str, period: str, period_id: str) -> str:
    return f"spend:{scope}:{name}:{period}:{period_id}"


# Read-only, not frozen: built per request, and frozen ones cost 3x to build.
@dataclass(slots=True)
class Reservation:
    """What was reserved, on which counters: settlement gives exactly this back."""

    keys: tuple[str, ...]
    tokens: float
    usd: float


# (key, limits, lease terms, scope, period) per budget counter
Counter = tuple[str, dict[str, float], str, str, str]
Scopes = tuple[tuple[str, str, BudgetConfig], ...]  # (scope, name, budget): the key's, its team's
PLANS_CACHED = 4096  # (scopes, day) plans and principals' scopes remembered; cleared when full


@dataclass(frozen=True, slots=True)
class Plan:
    """Each budget counter of a request's scopes for one day: its key, limits and lease
    terms, built once per key and day, not per request (the limits dicts are shared and
    must not be changed)."""

    counters: tuple[Counter, ...]
    keys: tuple[str, ...]  # the counters' keys, in order: what a reservation holds
    terms: tuple[str, ...]  # the counters' lease terms, in order

    @classmethod
    def build(cls, scopes: Scopes, day: str, month: str) -> Plan:
        ids = {"day": day, "month": month}
        counters = []
        for scope, name, budget in scopes:
            for period in PERIODS:
                limits = {
                    "tokens": getattr(budget, f"tokens_per_{period}"),
                    "usd": getattr(budget, f"usd_per_{period}"),
                }
                present = {f: float(v) for f, v in limits.items() if v is not None}
                key = spend_key(scope, name, period, ids[period])
                terms = Hold(key, {}, present).lease_terms()
                counters.append((key, present, terms, scope, period))
        return cls(tuple(counters), tuple(c[0] for c in counters), tuple(c[2] for c in counters))


@functools.lru_cache(maxsize=4096)
def _settle_keys(key_id: str, team: str | None, day: str, month: str) -> tuple[str, ...]:
    """The spend counters a key's usage is recorded in today: its own and its team's."""
    ids = {"day": day, "month": month}
    names = [("key", key_id)] + ([("team", team)] if team else [])
    return tuple(
        spend_key(scope, name, period, ids[period]) for scope, name in names for period in PERIODS
    )


class SpendStore:
    def __init__(self, state: StateBackend, teams: TeamPolicies | None = None) -> None:
        self.state = state
        self.teams = teams or TeamPolicies()
        # Built once per key (and team policy) and per key and day, not per request. Keyed
        # by id: an entry keeps its principal (or scopes) alive, so the id is not reused
        # while it is there; identity is checked on every hit.
        self._scopes: dict[int, tuple[Principal, BudgetConfig | None, Scopes]] = {}
        self._plans: dict[tuple[int, str, str], tuple[Scopes, Plan]] = {}

    async def scopes(self, principal: Principal) -> Scopes:
        """(scope, name, budget) for the key and its team, each only if it has a budget."""
        if self.teams.source is not None:
            await self.teams.refresh()
        return self.known_scopes(principal)

    def known_scopes(self, principal: Principal) -> Scopes:
        """`scopes` by the team policies this process holds now (not refreshed first)."""
        teams = self.teams
        found = self._scopes.get(id(principal))
        # YAML teams only (fixed for the generation): no team budget to compare
        if teams.source is None and found is not None and found[0] is principal:
            return found[2]
        team_budget = teams.budget(principal.team) if principal.team else None
        if found is not None and found[0] is principal and found[1] is team_budget:
            return found[2]
        out = []
        if not principal.budget.empty:
            out.append(("key", principal.key_id, principal.budget))
        if team_budget is not None and not team_budget.empty:
            out.append(("team", principal.team or "", team_budget))
        if len(self._scopes) >= PLANS_CACHED:
            self._scopes.clear()
        scopes = self._scopes[id(principal)] = (principal, team_budget, tuple(out))
        return scopes[2]

    def plan(self, scopes: Scopes, day: str, month: str) -> Plan:
        memo = (id(scopes), day, month)
        found = self._plans.get(memo)
        if found is not None and found[0] is scopes:
            return found[1]
        plan = Plan.build(scopes, day, month)
        if len(self._plans) >= PLANS_CACHED:
            self._plans.clear()
        self._plans[memo] = (scopes, plan)
        return plan

    async def reserve(
        self,
        principal: Principal,
        tokens: int,
        usd: float,
        scopes: Scopes | None = None,
        requires: str = "",
    ) -> Reservation:
        """Reserve `tokens` and `usd` under every budget of the key and its team, or
        raise QuotaExceeded (nothing reserved). State errors propagate (fail open).
        `scopes`: `self.scopes(principal)` when the caller has it already. `requires`: a
        field every counter hash must have, else MissingMark (nothing reserved)."""
        scopes = await self.scopes(principal) if scopes is None else scopes
        leased = self.reserve_leased(tokens, usd, scopes)
        if leased is not None:
            return leased
        ids = _current_periods()
        amounts = {"tokens": float(tokens), "usd": usd}  # read, never changed, by each hold
        plan = self.plan(scopes, ids["day"], ids["month"])
        holds = [
            Hold(key, amounts, limits, terms, requires)
            for key, limits, terms, _, _ in plan.counters
        ]
        refused = await self.state.reserve(holds, ttl=RETENTION_SECONDS)
        if refused is not None:
            scope, period = plan.counters[refused][3:]
            raise QuotaExceeded(
                f"The {scope} has too little budget left this {period} for this request "
                f"(its maximum cost: ${usd:.6f}, {tokens} tokens).",
                param=scope,
            )
        return Reservation(plan.keys, float(tokens), usd)

    def reserve_leased(self, tokens: int, usd: float, scopes: Scopes) -> Reservation | None:
        """`reserve` from this process's budget leases alone, with no await; None when
        they cannot take it (then `reserve` decides, in Redis). It is what `reserve`, and
        the ledger's override of it, try first: a leased reservation needs no mark."""
        ids = _current_periods()
        plan = self.plan(scopes, ids["day"], ids["month"])
        amounts = {"tokens": float(tokens), "usd": usd}
        if self.state.take_leased(plan.terms, amounts, RETENTION_SECONDS):
            return Reservation(plan.keys, float(tokens), usd)
        return None

    async def settle(
        self, principal: Principal, reservation: Reservation | None, tokens: int, usd: float
    ) -> None:
        """Record the real usage (key and team, day and month) and release the
        reservation; queued and retried when the state cannot take it now."""
        ids = _current_periods()
        keys = _settle_keys(principal.key_id, principal.team, ids["day"], ids["month"])
        amounts = {"tokens": float(tokens), "usd": usd, "requests": 1.0}
        if reservation is None or reservation.keys == keys:  # the same on every counter
            if reservation is not None:
                amounts["reserved_tokens"] = -reservation.tokens
                amounts["reserved_usd"] = -reservation.usd
            await self.state.debit_each(keys, amounts, ttl=RETENTION_SECONDS)
            return
        updates = {key: dict(amounts) for key in keys}
        if reservation is not None:  # the period may have turned: release where reserved
            for key in reservation.keys:
                fields = updates.setdefault(key, {})
                fields["reserved_tokens"] = -reservation.tokens
                fields["reserved_usd"] = -reservation.usd
        await self.state.debit(updates, ttl=RETENTION_SECONDS)

    async def release(self, reservation: Reservation) -> None:
        """Give a reservation back unused (the call failed or reported no usage)."""
        released = {"reserved_tokens": -reservation.tokens, "reserved_usd": -reservation.usd}
        await self.state.debit({key: dict(released) for key in reservation.keys})

    async def usage(self, scope: str, name: str) -> dict[str, dict[str, float | str]]:
        """Spend this day and month; this instance's batched debits included (written first)."""
        ids = period_ids()
        keys = [spend_key(scope, name, p, ids[p]) for p in PERIODS]
        await self.state.write_pending()
        spent = await self.state.hgetall_many(keys)
        fields = ("tokens", "usd", "requests")
        return {
            period: {"period": ids[period], **{f: used.get(f, 0.0) for f in fields}}
            for period, used in zip(PERIODS, spent, strict=True)
        }
