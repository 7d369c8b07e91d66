"""Budgets whose running totals survive the state backend: rebuilt from the ledger.

SpendStore keeps spend per key/team and UTC day/month in state hashes. After Redis loses
them (flush, restart without persistence) a budget would silently restart at zero; here a
hash without the `seeded` mark is topped up from the ledger's sums for that period once
(claimed by one instance through a counter), so a key at 90% of its budget stays at 90%.
The loss is noticed by the reservation itself: its script requires the mark on every
hash it reserves on (gateway/state/reserve_script.py), so a budgeted request costs no read
of the totals (it cost four, a Redis round trip per request, before). A reservation
served from a budget lease makes no call at all: a hash lost while this instance holds a
lease on it is noticed at the lease's next refill (a lease is at most
`state.lease_fraction` of the budget). Rows still queued in some instance's ledger
writer when the totals are rebuilt are missed (a fraction of a second of spend). The
database being down never blocks a request: the rebuild is skipped then and tried again
on a later request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime

from gateway.accounting.budgets import (
    PERIODS,
    RETENTION_SECONDS,
    Reservation,
    Scopes,
    SpendStore,
    period_ids,
    spend_key,
)
from gateway.accounting.teams import TeamPolicies
from gateway.auth.principal import Principal
from gateway.db.pool import DB_ERRORS, Database
from gateway.state import StateBackend
from gateway.state.backend import MissingMark

log = logging.getLogger("gateway")
SEEDED = "seeded"
CLAIM_SECONDS = 30.0  # an instance that claimed a rebuild and died blocks others this long
REBUILD_TIMEOUT = 1.0  # the longest a request waits for the ledger's sums
RETRY_AFTER_FAILURE = 5.0
SUMS = """
SELECT coalesce(sum(cost_usd), 0) AS usd,
       coalesce(sum(prompt_tokens + completion_tokens), 0) AS tokens,
       count(*) AS requests
FROM usage_ledger
WHERE {column} = $1 AND at >= $2 AND prompt_tokens + completion_tokens > 0
"""


def period_start(period: str, now: datetime) -> datetime:
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return start.replace(day=1) if period == "month" else start


class LedgerSpendStore(SpendStore):
    def __init__(self, state: StateBackend, teams: TeamPolicies, db: Database) -> None:
        super().__init__(state, teams)
        self.db = db
        self._down_until = 0.0

    async def reserve(
        self,
        principal: Principal,
        tokens: int,
        usd: float,
        scopes: Scopes | None = None,
        requires: str = "",
    ) -> Reservation:
        """SpendStore.reserve on totals known complete: the reservation itself requires
        each counter hash's `seeded` mark (no extra round trip), and a hash without it is
        rebuilt from the ledger first, then reserved on. While the database is down, or
        when another instance is rebuilding a hash, the reservation goes on without the
        mark (budgets fail open rather than block)."""
        scopes = await self.scopes(principal) if scopes is None else scopes
        if scopes and time.monotonic() >= self._down_until:
            try:
                return await super().reserve(principal, tokens, usd, scopes, SEEDED)
            except MissingMark:
                await self.restore(principal, scopes)
        return await super().reserve(principal, tokens, usd, scopes, requires)

    async def restore(self, principal: Principal, scopes: Scopes | None = None) -> None:
        scopes = await self.scopes(principal) if scopes is None else scopes
        if not scopes or time.monotonic() < self._down_until:
            return
        now = datetime.now(UTC)
        ids = period_ids(now)
        keys = [spend_key(s, n, p, ids[p]) for s, n, _ in scopes for p in PERIODS]
        spent = await self.state.hgetall_many(keys)
        lost = [i for i, used in enumerate(spent) if SEEDED not in used]
        if not lost:
            return
        targets = [(*scopes[i // 2][:2], PERIODS[i % 2], keys[i]) for i in lost]
        try:
            await asyncio.wait_for(self.rebuild(targets, now), REBUILD_TIMEOUT)
        except DB_ERRORS:
            self._down_until = time.monotonic() + RETRY_AFTER_FAILURE
            log.warning("budget totals not rebuilt: database unreachable")

    async def rebuild(self, targets: list[tuple[str, str, str, str]], now: datetime) -> None:
        """Top up each (scope, name, period, hash) from the ledger's sums, once per hash."""
        for scope, name, period, key in targets:
            if not await self.claim(key):
                continue
            column = "key_id" if scope == "key" else "team"
            pool = await self.db.pool()
            row = await pool.fetchrow(SUMS.format(column=column), name, period_start(period, now))
            assert row is not None
            again = (await self.state.hgetall_many([key]))[0]
            topup = {
                field: max(0.0, float(row[field]) - again.get(field, 0.0))
                for field in ("usd", "tokens", "requests")
            }
            await self.state.hincr_many({key: {**topup, SEEDED: 1.0}}, ttl=RETENTION_SECONDS)

    async def claim(self, key: str) -> bool:
        return await self.state.incr(f"{key}:rebuild", 1.0, ttl=CLAIM_SECONDS) == 1.0
