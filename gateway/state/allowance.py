"""Allowances: the cost of several requests, carved from several leases at once, then
spent with one check per request.

A request under a key's rate limits takes its cost from each of its rules' leases (the
key's and the model's windows, requests and tokens); a budget reservation takes it from
each of its counters' leases (the key's and its team's, day and month). Taking from four
leases, field by field, was most of those stages' work per request (benchmarks/README.md,
round 7). An allowance takes several requests' worth from every lease of a group in one
step, and then serves requests from one number per group until it runs short.

Why no limit changes: what an allowance holds was taken from leases, and a lease's units
are counted in Redis already. An allowance ends before any lease it came from does (the
lease book ends every allowance first whenever it ends a lease: its time is up, a new
lease replaces it, shutdown), and its unspent units then go back into the leases still
held, which give them back to Redis as their own. When the book forgets its leases
(Redis lost), allowances are dropped with them: what they held stays counted in Redis,
which can refuse early, never over-admit.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import Any

ALLOWANCE_REQUESTS = 64  # at most this many requests' worth, like the one that carved it
SHARE = 4  # and at most this fraction (1/SHARE) of what a lease holds: the rest stays
# for the other keys and models that spend from the same lease

# What one field of an allowance was carved from: (book key, lease, lease field) each.
Sources = tuple[tuple[Hashable, Any, str], ...]


class Allowance:
    """Two fields (a rate plan's requests and tokens; a budget's tokens and usd): per
    field, what is left to spend (`left`) and the leases it came from (`sources`). Spent
    on the event loop only, with no await between the check and the take."""

    __slots__ = ("expires_at", "left", "sources", "used_at")

    def __init__(self, sources: tuple[Sources, Sources], left: list[float], expires_at: float):
        self.sources = sources
        self.left = left
        # time.monotonic(): the end of the earliest counter period among its leases (past
        # it, a unit would be spent in a period that did not count it). An allowance also
        # ends, earlier, with any lease it came from (LeaseBook.end_allowance).
        self.expires_at = expires_at
        self.used_at = -math.inf  # time.monotonic() of the last take: its leases are in use

    def take(self, first: float, second: float, now: float) -> bool:
        """Take `first` and `second` of the two fields when live and holding both; else
        take nothing."""
        left = self.left
        if self.expires_at > now and left[0] >= first and left[1] >= second:
            left[0] -= first
            left[1] -= second
            self.used_at = now
            return True
        return False

    def give(self, field: int, amount: float, now: float) -> bool:
        """Add `amount` to one field (negative: take it, when it is there); False when the
        allowance has ended or holds too little."""
        left = self.left
        if self.expires_at <= now or left[field] + amount < 0:
            return False
        left[field] += amount
        return True

    def end(self) -> list[tuple[Hashable, Any, str, float]]:
        """End it now: per source, the unspent amount that goes back to it."""
        left = self.left
        back = [
            (key, lease, name, left[i])
            for i, sources in enumerate(self.sources)
            for key, lease, name in sources
            if left[i] > 0
        ]
        self.sources = ((), ())
        self.left = [0.0, 0.0]
        self.expires_at = -math.inf
        return back
