"""Experiment feedback kept for good. Which variant served a request is in the ledger
(`experiment`, `variant` per row); the feedback on it goes here, one row per request and
experiment (a second verdict replaces the first)."""

from __future__ import annotations

import asyncio
import logging

from gateway.db.pool import DB_ERRORS, Database
from gateway.experiments.store import Link

log = logging.getLogger("gateway")
KEEP_TIMEOUT = 2.0  # seconds a feedback call waits for the database at most


class FeedbackArchive:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        request_id: str,
        experiment: str,
        variant: str,
        key_id: str,
        outcome: str | None,
        score: float | None = None,
    ) -> None:
        pool = await self.db.pool()
        await pool.execute(
            "INSERT INTO experiment_feedback "
            "(request_id, experiment, variant, key_id, outcome, score) "
            "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (request_id, experiment) "
            "DO UPDATE SET outcome = EXCLUDED.outcome, score = EXCLUDED.score, at = now()",
            request_id,
            experiment,
            variant,
            key_id,
            outcome,
            score,
        )

    async def keep(
        self, request_id: str, link: Link, outcome: str | None, score: float | None
    ) -> None:
        """Record, but never fail the feedback call: the state backend has counted it."""
        try:
            await asyncio.wait_for(
                self.record(request_id, link.experiment, link.variant, link.key_id, outcome, score),
                KEEP_TIMEOUT,
            )
        except DB_ERRORS as exc:
            log.warning("feedback not kept in the database", extra={"error": type(exc).__name__})
