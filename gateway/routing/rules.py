"""Compiled route rules: each condition a small predicate over RequestFeatures."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from gateway.config.routing import RouteRule, RuleConditions
from gateway.routing.features import RequestFeatures

Predicate = Callable[[RequestFeatures], bool]


@dataclass(frozen=True)
class CompiledRule:
    name: str
    target: str
    predicates: tuple[Predicate, ...]

    def matches(self, features: RequestFeatures) -> bool:
        return all(predicate(features) for predicate in self.predicates)


def compile_rule(rule: RouteRule) -> CompiledRule:
    return CompiledRule(rule.name, rule.target, tuple(_predicates(rule.when)))


def _predicates(when: RuleConditions) -> list[Predicate]:
    checks: list[Predicate] = []
    if when.min_prompt_tokens is not None:
        low = when.min_prompt_tokens
        checks.append(lambda f: f.prompt_tokens >= low)
    if when.max_prompt_tokens is not None:
        high = when.max_prompt_tokens
        checks.append(lambda f: f.prompt_tokens <= high)
    if when.min_turns is not None:
        fewest = when.min_turns
        checks.append(lambda f: f.turns >= fewest)
    if when.max_turns is not None:
        most = when.max_turns
        checks.append(lambda f: f.turns <= most)
    if when.tools is not None:
        tools = when.tools
        checks.append(lambda f: f.has_tools is tools)
    if when.json_response is not None:
        json_response = when.json_response
        checks.append(lambda f: f.wants_json is json_response)
    if when.code is not None:
        code = when.code
        checks.append(lambda f: f.has_code is code)
    if when.pattern is not None:
        pattern = re.compile(when.pattern, re.IGNORECASE)
        checks.append(lambda f: pattern.search(f.newest_user_text) is not None)
    if when.keywords:
        checks.append(_keywords(when.keywords))
    checks.extend(_mapping_predicates(when))
    if when.teams:
        teams = frozenset(when.teams)
        checks.append(lambda f: f.ctx.principal.team in teams)
    return checks


def _mapping_predicates(when: RuleConditions) -> list[Predicate]:
    checks: list[Predicate] = []
    for key, value in when.metadata.items():
        checks.append(partial(_metadata_is, key, value))
    for name, value in when.headers.items():
        checks.append(partial(_header_is, name, value))
    return checks


def _keywords(keywords: list[str]) -> Predicate:
    """Any keyword as a whole word or phrase, ignoring case. A substring test first: the
    word-boundary regex runs only when some keyword occurs at all."""
    lowered = tuple(k.lower() for k in keywords)
    words = "|".join(re.escape(k) for k in lowered)
    pattern = re.compile(rf"(?<!\w)(?:{words})(?!\w)")

    def check(f: RequestFeatures) -> bool:
        text = f.lowered_text
        return any(k in text for k in lowered) and pattern.search(text) is not None

    return check


def _metadata_is(key: str, value: str, features: RequestFeatures) -> bool:
    return str(features.metadata.get(key)) == value


def _header_is(name: str, value: str, features: RequestFeatures) -> bool:
    return features.ctx.headers.get(name) == value
