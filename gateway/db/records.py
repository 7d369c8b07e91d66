"""The system of record: everything PostgreSQL keeps for one `state.database` URL.

Built once per process (reused across config reloads while the URL is the same), started
in the lifespan and closed last, after the final requests' ledger rows are flushed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gateway.accounting.pricing import PriceBook
from gateway.accounting.teams import TeamPolicies
from gateway.auth.principal import ANONYMOUS
from gateway.context import RequestContext
from gateway.db.feedback import FeedbackArchive
from gateway.db.keys import KeyArchive, KeyBackedState
from gateway.db.ledger import LedgerWriter
from gateway.db.pool import DB_ERRORS, Database
from gateway.db.responses import PostgresResponseStore
from gateway.db.spend import LedgerSpendStore
from gateway.db.teams import TeamArchive, TeamCache
from gateway.db.usage import UsageQuery, usage_report
from gateway.errors import DatabaseUnavailable
from gateway.observability.metrics import Metrics
from gateway.state import StateBackend
from gateway.types import Reply

log = logging.getLogger("gateway")
LedgerSink = Callable[[RequestContext, Reply], None]


class Records:
    def __init__(self, url: str, metrics: Metrics) -> None:
        self.url = url
        self.database = Database(url)
        self.ledger = LedgerWriter(self.database, metrics)
        self.keys = KeyArchive(self.database)
        self.feedback = FeedbackArchive(self.database)
        self.responses = PostgresResponseStore(self.database)
        self.team_archive = TeamArchive(self.database)
        self.teams = TeamCache(self.team_archive)  # kept across reloads: one copy per process

    def key_state(self, state: StateBackend) -> StateBackend:
        """`state` with admin-created keys backed by the database."""
        return KeyBackedState(state, self.keys)

    def spend(self, state: StateBackend, teams: TeamPolicies) -> LedgerSpendStore:
        return LedgerSpendStore(state, teams, self.database)

    def ledger_sink(self, prices: PriceBook) -> LedgerSink:
        ledger = self.ledger

        def sink(ctx: RequestContext, reply: Reply) -> None:
            if unidentified_and_free(ctx, reply):
                return  # counted in metrics; an unauthenticated flood never grows the ledger
            ledger.record(ctx, reply, prices)

        return sink

    async def usage(self, query: UsageQuery) -> list[dict[str, Any]]:
        try:
            return await usage_report(await self.database.pool(), query)
        except DB_ERRORS as exc:
            log.warning("usage report failed", extra={"error": type(exc).__name__})
            raise DatabaseUnavailable("The usage ledger cannot be reached; try again.") from None

    def start(self) -> None:
        self.ledger.start()

    async def aclose(self) -> None:
        await self.teams.aclose()
        await self.ledger.aclose()
        await self.database.aclose()


def unidentified_and_free(ctx: RequestContext, reply: Reply) -> bool:
    """A request no key answered for (401, a per-IP 429, a body refused before auth) that
    used no tokens: the ledger records what keys did and what was spent, nothing else."""
    return ctx.principal is ANONYMOUS and (reply.usage is None or reply.usage.total_tokens == 0)


def build_records(url: str, metrics: Metrics, previous: Records | None) -> Records:
    if previous is not None and previous.url == url:
        return previous
    records = Records(url, metrics)
    records.start()  # the ledger writer runs from the first build on
    return records
