"""Report arithmetic: the two-proportion z-test and histogram percentiles."""

from __future__ import annotations

import pytest

from gateway.experiments.stats import histogram_percentile, summarize, two_proportion_z
from gateway.experiments.store import LATENCY_BOUNDS, latency_bucket


@pytest.mark.parametrize(
    ("args", "z", "p", "significant"),
    [
        ((50, 100, 65, 100), 2.1456, 0.0319, True),  # pooled SE 0.0699
        ((50, 100, 55, 100), 0.7080, 0.4789, False),
        ((0, 10, 0, 10), 0.0, 1.0, False),
    ],
)
def test_two_proportion_z(
    args: tuple[int, int, int, int], z: float, p: float, significant: bool
) -> None:
    result = two_proportion_z(*args)
    assert result is not None
    assert result.z == pytest.approx(z, abs=1e-3)
    assert result.p_value == pytest.approx(p, abs=1e-3)
    assert result.significant is significant


def test_no_trials_no_test() -> None:
    assert two_proportion_z(0, 0, 5, 10) is None


def test_histogram_percentiles_interpolate_within_buckets() -> None:
    counts = [0.0] * (len(LATENCY_BOUNDS) + 1)
    for seconds in [0.3] * 50 + [0.6] * 45 + [4.0] * 5:
        counts[latency_bucket(seconds)] += 1
    assert 0.25 <= histogram_percentile(counts, 50) <= 0.5  # type: ignore[operator]
    assert 0.5 <= histogram_percentile(counts, 95) <= 0.75  # type: ignore[operator]
    assert histogram_percentile([0.0] * len(counts), 50) is None


def test_summary_compares_each_variant_with_control() -> None:
    raw = {
        "a": {"requests": 200, "errors": 2, "fb_accepted": 50, "fb_rejected": 50},
        "b": {"requests": 200, "fb_accepted": 65, "fb_rejected": 30, "fb_corrected": 5},
    }
    a, b = summarize(raw, control="a")
    assert (a.control, a.acceptance_rate, a.error_rate, a.vs_control) == (True, 0.5, 0.01, None)
    assert b.acceptance_rate == 0.65
    assert b.vs_control is not None and b.vs_control.significant
