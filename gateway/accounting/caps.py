"""The caps that apply to one request: the target alias's and the key's, merged.

Ceilings come from the model alias (`caps.models`) and the key (`caps` on a key); the
tighter wins. Token reservations, budgets and the caps stage all read the planned output
from here, so they agree on what a request may produce.
"""

from __future__ import annotations

from gateway.config.access import CapsConfig, CapsSection
from gateway.context import RequestContext
from gateway.request import CanonicalRequest

# (id(section), alias, id(key caps)) -> (section, key caps, merged): merged once per key,
# alias and config generation, not per request (twice per request: limits and caps). The
# entry keeps both alive, so their ids are not reused while it is there.
_MERGED: dict[tuple[int, str, int], tuple[CapsSection, CapsConfig, CapsConfig]] = {}
MERGED_CACHED = 4096


def effective_caps(section: CapsSection, alias: str, key_caps: CapsConfig) -> CapsConfig:
    """The alias's caps and the key's, merged: the key's default wins, the lower ceiling wins."""
    cached = _MERGED.get((id(section), alias, id(key_caps)))
    if cached is not None and cached[0] is section and cached[1] is key_caps:
        return cached[2]
    merged = _merge(section, alias, key_caps)
    if len(_MERGED) >= MERGED_CACHED:
        _MERGED.clear()
    _MERGED[(id(section), alias, id(key_caps))] = (section, key_caps, merged)
    return merged


def request_caps(section: CapsSection, ctx: RequestContext) -> CapsConfig:
    """The caps of a routed request (its key's and its target alias's, merged), worked
    out once per request: the limits and caps stages both read them."""
    caps = ctx.caps
    if caps is None:
        alias = ctx.target_alias or ctx.alias
        caps = ctx.caps = effective_caps(section, alias, ctx.principal.caps)
    return caps


def _merge(section: CapsSection, alias: str, key_caps: CapsConfig) -> CapsConfig:
    model = section.models.get(alias, CapsConfig())
    ceiling = _lowest(model.max_tokens, key_caps.max_tokens)
    default = key_caps.default_max_tokens or model.default_max_tokens
    if default is not None and ceiling is not None:
        default = min(default, ceiling)
    return CapsConfig(
        default_max_tokens=default,
        max_tokens=ceiling,
        on_exceed=key_caps.on_exceed or model.on_exceed or section.on_exceed,
        max_input_tokens=_lowest(model.max_input_tokens, key_caps.max_input_tokens),
        max_output_tokens=_lowest(model.max_output_tokens, key_caps.max_output_tokens),
        max_choices=_lowest(model.max_choices, key_caps.max_choices, section.max_choices),
    )


def planned_bound(request: CanonicalRequest, caps: CapsConfig) -> int | None:
    """The per-choice output bound the request will run with; None if unbounded."""
    requested = request.output_bound()
    if requested is None:
        return caps.default_max_tokens
    if caps.max_tokens is not None:
        return min(requested, caps.max_tokens)
    return requested


def planned_output(request: CanonicalRequest, caps: CapsConfig) -> int | None:
    """The most output tokens the whole request may produce (bound x choices)."""
    bound = planned_bound(request, caps)
    if bound is None:
        return None
    total = bound * request.choices()
    if caps.max_output_tokens is not None:
        total = min(total, caps.max_output_tokens)
    return total


def _lowest(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None
