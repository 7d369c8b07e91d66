"""Per-variant counters and request → variant links, kept in the state backend so that
every instance adds to (and reports from) the same numbers.

Counters are written as debits, in batches every few ms (gateway/state/write_batch.py),
retried, flushed on shutdown: no Redis round trip per request for them. A report writes
this instance's pending ones first; another instance's arrive within its batch interval.
A request's link is written before its reply leaves (feedback may follow at once, to any
instance), while the provider works: the links of one loop turn in one round trip
(gateway/state/grouped_sets.py).

Layout: hash `exp:{experiment}:{variant}` holds counters (requests, errors, tokens,
cost, feedback, latency histogram buckets `lat_{i}`); `exp:req:{key id}|{request_id}`
holds "experiment\tvariant\tkey id" until feedback can no longer name it, and
`exp:fb:{key id}|{request_id}` the request's current feedback and the hash it was counted
in. Links are scoped by the key that made the request: a client-chosen request id cannot
reach another key's request.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from math import isfinite

from gateway.state import StateBackend
from gateway.state.grouped_sets import GroupedSets

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


@dataclass(frozen=True)
class Feedback:
    """A client's verdict on one request: an outcome, a score, or both."""

    outcome: str | None
    score: float | None

    def fields(self) -> dict[str, float]:
        fields: dict[str, float] = {"feedback": 1.0}
        if self.outcome is not None:
            fields[f"fb_{self.outcome}"] = 1.0
        if self.score is not None:
            fields["score_sum"] = self.score
            fields["score_count"] = 1.0
        return fields

    def encode(self) -> bytes:
        return f"{self.outcome or ''}\t{'' if self.score is None else repr(self.score)}".encode()

    @staticmethod
    def decode(raw: bytes | None) -> Feedback | None:
        """The stored feedback; None when absent or unreadable (then nothing is undone)."""
        if raw is None:
            return None
        outcome, _, score = raw.decode(errors="replace").partition("\t")
        try:
            value = float(score) if score else None
        except ValueError:
            return None
        if (outcome and outcome not in OUTCOMES) or (value is not None and not isfinite(value)):
            return None
        return Feedback(outcome or None, value)


def _request_key(kind: str, key_id: str, request_id: str) -> str:
    # Key ids and request ids never contain '|' (both match [A-Za-z0-9._:()-]).
    return f"exp:{kind}:{key_id}|{request_id}"


def latency_bucket(seconds: float) -> int:
    return bisect_left(LATENCY_BOUNDS, seconds)


class ExperimentStore:
    def __init__(self, state: StateBackend) -> None:
        self.state = state
        self.links = GroupedSets(state)  # the links of one loop turn: one round trip

    @staticmethod
    def _key(experiment: str, variant: str) -> str:
        return f"exp:{experiment}:{variant}"

    async def link(self, request_id: str, link: Link, ttl: float) -> None:
        value = f"{link.experiment}\t{link.variant}\t{link.key_id}"
        await self.links.set(_request_key("req", link.key_id, request_id), value.encode(), ttl)

    async def lookup(self, key_id: str, request_id: str) -> Link | None:
        raw = await self.state.get(_request_key("req", key_id, request_id))
        if raw is None:
            return None
        experiment, variant, owner = [*raw.decode().split("\t"), "", ""][:3]
        return Link(experiment, variant, owner)

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
        self, request_id: str, link: Link, feedback: Feedback, ttl: float
    ) -> None:
        """One feedback per request: the last one wins and is counted once. The swap is
        atomic, so concurrent feedbacks telescope to exactly the last one's counts; the
        one replaced is taken back from the variant it was counted in (a request id the key
        used again may have gone to another variant)."""
        key = _request_key("fb", link.key_id, request_id)
        counted = self._key(link.experiment, link.variant)
        value = counted.encode() + b"\n" + feedback.encode()
        previous = await self.state.swap(key, value, ttl)
        updates = {counted: feedback.fields()}
        where, _, was = (previous or b"").partition(b"\n")
        replaced = Feedback.decode(was) if where.startswith(b"exp:") else None
        if replaced is not None:
            undo = updates.setdefault(where.decode(errors="replace"), {})
            for name, amount in replaced.fields().items():
                undo[name] = undo.get(name, 0.0) - amount
        await self.state.hincr_many(
            {k: {f: v for f, v in fields.items() if v} for k, fields in updates.items()}
        )

    async def read(self, experiment: str, variants: list[str]) -> dict[str, dict[str, float]]:
        await self.state.write_pending()  # this instance's counts of the last few ms
        keys = [self._key(experiment, v) for v in variants]
        try:
            rows = await self.state.hgetall_many(keys)
        except ValueError:  # a counter that is no number (written by hand): read each alone
            rows = [await self._read_or_empty(key) for key in keys]
        return dict(zip(variants, rows, strict=True))

    async def _read_or_empty(self, key: str) -> dict[str, float]:
        try:
            return (await self.state.hgetall_many([key]))[0]
        except ValueError:
            return {}

    async def _add(self, key: str, fields: dict[str, float]) -> None:
        """With the other debits of the next few ms (one Redis call for them all, not one
        per request), retried when Redis cannot take them: no request goes uncounted."""
        await self.state.debit({key: {f: v for f, v in fields.items() if v}})
