"""Per-variant results from the stored counters, with a two-proportion z-test of each
variant's acceptance rate against the control's."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from gateway.experiments.store import LATENCY_BOUNDS, OUTCOMES

MAX_COUNTER = 1e15  # past this a stored counter is corrupt, not a count (shown as 0)


@dataclass(frozen=True)
class Significance:
    z: float
    p_value: float
    significant: bool  # p < 0.05, two-sided


@dataclass(frozen=True)
class VariantResult:
    variant: str
    control: bool
    requests: int
    errors: int
    error_rate: float
    latency_p50_s: float | None
    latency_p95_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cost: float
    feedback: dict[str, int]
    mean_score: float | None
    acceptance_rate: float | None
    vs_control: Significance | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def histogram_percentile(counts: list[float], pct: float) -> float | None:
    """Linear interpolation inside the bucket holding the pct-th observation."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = total * pct / 100
    seen = 0.0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS[i - 1] if i else 0.0
            high = LATENCY_BOUNDS[i] if i < len(LATENCY_BOUNDS) else low * 2
            return low + (high - low) * (rank - seen) / count
        seen += count
    return LATENCY_BOUNDS[-1]


def two_proportion_z(success_a: int, n_a: int, success_b: int, n_b: int) -> Significance | None:
    """Is b's rate different from a's? None when either side has no trials."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (success_a + success_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return Significance(0.0, 1.0, False)
    z = (success_b / n_b - success_a / n_a) / spread
    p_value = 1 - math.erf(abs(z) / math.sqrt(2))
    return Significance(round(z, 4), round(p_value, 6), p_value < 0.05)


def summarize(raw: dict[str, dict[str, float]], control: str) -> list[VariantResult]:
    raw = {variant: _sane(fields) for variant, fields in raw.items()}
    judged = {v: _judged(fields) for v, fields in raw.items()}
    base = judged.get(control, (0, 0))
    return [
        _result(variant, fields, variant == control, base, judged[variant])
        for variant, fields in raw.items()
    ]


def _sane(fields: dict[str, float]) -> dict[str, float]:
    """Stored counters as numbers a report can always show: whatever the store holds (a
    non-number, inf, NaN, a value past any count), never an error. Counts stay >= 0."""
    sane = {}
    for name, value in fields.items():
        number = value if isinstance(value, float | int) else 0.0
        if not math.isfinite(number) or abs(number) > MAX_COUNTER:
            number = 0.0
        sane[name] = float(number if name == "score_sum" or number >= 0 else 0.0)
    return sane


def _judged(fields: dict[str, float]) -> tuple[int, int]:
    """(accepted, judged) where judged counts accepted, rejected and corrected."""
    counts = [int(fields.get(f"fb_{o}", 0)) for o in OUTCOMES]
    return counts[0], sum(counts)


def _result(
    variant: str,
    fields: dict[str, float],
    is_control: bool,
    base: tuple[int, int],
    mine: tuple[int, int],
) -> VariantResult:
    requests = int(fields.get("requests", 0))
    errors = int(fields.get("errors", 0))
    buckets = [fields.get(f"lat_{i}", 0.0) for i in range(len(LATENCY_BOUNDS) + 1)]
    score_count = fields.get("score_count", 0.0)
    accepted, judged = mine
    return VariantResult(
        variant=variant,
        control=is_control,
        requests=requests,
        errors=errors,
        error_rate=round(errors / requests, 4) if requests else 0.0,
        latency_p50_s=_round(histogram_percentile(buckets, 50)),
        latency_p95_s=_round(histogram_percentile(buckets, 95)),
        prompt_tokens=int(fields.get("prompt_tokens", 0)),
        completion_tokens=int(fields.get("completion_tokens", 0)),
        cost=round(fields.get("cost", 0.0), 6),
        feedback={o: int(fields.get(f"fb_{o}", 0)) for o in OUTCOMES},
        mean_score=round(fields["score_sum"] / score_count, 4) if score_count else None,
        acceptance_rate=round(accepted / judged, 4) if judged else None,
        vs_control=None if is_control else two_proportion_z(base[0], base[1], accepted, judged),
    )


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
