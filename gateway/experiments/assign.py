"""Sticky variant assignment and the request changes a variant makes."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

from gateway.config.experiments import ExperimentConfig, VariantConfig
from gateway.context import RequestContext
from gateway.errors import InvalidRequest, PermissionDenied

FORCE_HEADER = "x-gateway-variant"


@dataclass(frozen=True)
class Assignment:
    experiment: str
    variant: str
    config: VariantConfig
    forced: bool = False

    @property
    def header(self) -> str:
        return f"{self.experiment}={self.variant}"


def unit_of(ctx: RequestContext) -> str:
    """Who stays in one variant: the body's `user`, else the key's user, else the key."""
    user = ctx.body.get("user")
    if isinstance(user, str) and user:
        return "u:" + user
    if ctx.principal.user:
        return "u:" + ctx.principal.user
    return "k:" + ctx.principal.key_id


def bucket(experiment: str, unit: str) -> float:
    """A stable position in [0, 1): the same on every instance and every restart."""
    digest = hashlib.blake2b(f"{experiment}\0{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


class Assigner:
    def __init__(self, name: str, config: ExperimentConfig) -> None:
        self.name = name
        self.config = config
        self.variants = list(config.variants)
        weights = [config.variants[v].weight for v in self.variants]
        total = sum(weights)
        self._edges = [edge / total for edge in accumulate(weights)]

    def pick(self, unit: str) -> str:
        index = bisect_right(self._edges, bucket(self.name, unit))
        return self.variants[min(index, len(self.variants) - 1)]

    def assign(self, ctx: RequestContext) -> Assignment:
        forced = ctx.headers.get(FORCE_HEADER)
        if forced:
            if not ctx.principal.may_force_variant:
                raise PermissionDenied(
                    f"This API key may not choose an experiment variant ({FORCE_HEADER}); "
                    "it needs may_force_variant.",
                    code="variant_not_allowed",
                    param=FORCE_HEADER,
                )
            if forced not in self.config.variants:
                raise InvalidRequest(
                    f"Experiment '{self.name}' has no variant '{forced}' "
                    f"(variants: {', '.join(self.variants)}).",
                    param=FORCE_HEADER,
                )
            return Assignment(self.name, forced, self.config.variants[forced], forced=True)
        variant = self.pick(unit_of(ctx))
        return Assignment(self.name, variant, self.config.variants[variant])


def apply_variant(body: dict[str, Any], variant: VariantConfig) -> dict[str, Any]:
    """The request body as the variant sends it (a new dict; the client's is untouched)."""
    changed = {**body, **variant.params}
    if variant.max_tokens is not None:
        changed["max_tokens"] = variant.max_tokens
    if variant.system_prompt is not None and isinstance(body.get("messages"), list):
        changed["messages"] = _with_system(body["messages"], variant)
    return changed


def _with_system(messages: list[Any], variant: VariantConfig) -> list[Any]:
    prompt = variant.system_prompt or ""
    rest = list(messages)
    first = rest[0] if rest else None
    if isinstance(first, dict) and first.get("role") in ("system", "developer"):
        content = first.get("content")
        if variant.system_prompt_mode == "replace":
            rest = rest[1:]
        elif isinstance(content, str):
            prompt = f"{prompt}\n\n{content}"
            rest = rest[1:]
    return [{"role": "system", "content": prompt}, *rest]
