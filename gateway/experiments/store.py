"""Per-variant counters and request → variant links, kept in the state backend so that
every instance adds to (and reports from) the same numbers.

Layout: hash `exp:{experiment}:{variant}` holds counters (requests, errors, tokens,
cost, feedback, latency histogram buckets `lat_{i}`); `exp:req:{request_id}` holds
"experiment\\tvariant\\tkey id" until feedback can no longer name it.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass

from gateway.state import StateBackend

# Upper bounds (seconds) of the latency histogram; the last bucket is open-ended.
LATENCY_BOUNDS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60, 120)
OUTCOMES = ("accepted", "rejected", "corrected")


@dataclass(frozen=True)
class Link:
    """Which experiment and variant served a request, and for which key."""

    experiment: str
    variant: str
    key_id: str


@dataclass(frozen=True)
class Outcome:
    """What one request cost and how it ended."""

    status: int
    seconds: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0


def latency_bucket(seconds: float) -> int:
    return bisect_left(LATENCY_BOUNDS, seconds)


class ExperimentStore:
    def __init__(self, state: StateBackend) -> None:
        self.state = state

    @staticmethod
    def _key(experiment: str, variant: str) -> str:
        return f"exp:{experiment}:{variant}"

    async def link(self, request_id: str, link: Link, ttl: float) -> None:
        value = f"{link.experiment}\t{link.variant}\t{link.key_id}"
        await self.state.set(f"exp:req:{request_id}", value.encode(), ttl)

    async def lookup(self, request_id: str) -> Link | None:
        raw = await self.state.get(f"exp:req:{request_id}")
        if raw is None:
            return None
        experiment, variant, key_id = [*raw.decode().split("\t"), "", ""][:3]
        return Link(experiment, variant, key_id)

    async def record(self, experiment: str, variant: str, outcome: Outcome) -> None:
        fields = {
            "requests": 1.0,
            "errors": 1.0 if outcome.status >= 400 else 0.0,
            "prompt_tokens": float(outcome.prompt_tokens),
            "completion_tokens": float(outcome.completion_tokens),
            "cost": outcome.cost,
            "latency_sum": outcome.seconds,
            f"lat_{latency_bucket(outcome.seconds)}": 1.0,
        }
        await self._add(self._key(experiment, variant), fields)

    async def record_feedback(
        self, experiment: str, variant: str, outcome: str | None, score: float | None
    ) -> None:
        fields: dict[str, float] = {"feedback": 1.0}
        if outcome is not None:
            fields[f"fb_{outcome}"] = 1.0
        if score is not None:
            fields["score_sum"] = score
            fields["score_count"] = 1.0
        await self._add(self._key(experiment, variant), fields)

    async def read(self, experiment: str, variants: list[str]) -> dict[str, dict[str, float]]:
        rows = await self.state.hgetall_many([self._key(experiment, v) for v in variants])
        return dict(zip(variants, rows, strict=True))

    async def _add(self, key: str, fields: dict[str, float]) -> None:
        await self.state.hincr_many({key: {f: v for f, v in fields.items() if v}})
