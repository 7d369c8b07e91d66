"""A request's rules for one key and target model, with what each decision needs of them
worked out once (which rules count tokens, which windows the headers show, whether two
rules share a counter), not on every request."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.ratelimit.windows import Charge, Rule, Shown, reported
from gateway.state.allowance import Allowance

# A plan's allowance (field 0: requests, 1: tokens) and the rules its headers show.
Held = tuple[Allowance, Shown]


class RatePlan:
    __slots__ = (
        "allowance",
        "counts_tokens",
        "distinct",
        "entries",
        "request_keys",
        "rules",
        "token_keys",
        "token_rules",
    )

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = tuple(rules)
        shown = reported([(rule, 0) for rule in rules])
        # (rule, whether its cost is the token estimate (else 1 request), shown in headers)
        self.entries = tuple(
            (rule, rule.kind == "tokens", report)
            for rule, report in zip(self.rules, shown, strict=True)
        )
        self.token_rules = tuple(rule for rule in self.rules if rule.kind == "tokens")
        self.counts_tokens = bool(self.token_rules)
        # Each rule its own counter: an allowance may take each cost from its counter's
        # lease alone (two rules on one counter add up: the general path).
        self.distinct = len({rule.key for rule in self.rules}) == len(self.rules)
        self.request_keys = tuple(rule.key for rule in self.rules if rule.kind != "tokens")
        self.token_keys = tuple(rule.key for rule in self.token_rules)
        self.allowance: Held | None = None  # the limiter's, while its leases are held

    def charges(self, tokens: int) -> list[Charge]:
        """What each rule takes from a request of `tokens` estimated tokens."""
        return [(rule, tokens if counts else 1) for rule, counts, _ in self.entries]
