"""Experiment feedback kept for good. Which variant served a request is in the ledger
(`experiment`, `variant` per row); the feedback on it goes here, one row per request and
experiment (a second verdict replaces the first)."""

from __future__ import annotations

from gateway.db.pool import Database


class FeedbackArchive:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        request_id: str,
        experiment: str,
        variant: str,
        key_id: str,
        outcome: str,
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
