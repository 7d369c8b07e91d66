"""The Grafana dashboard shipped with the chart asks only for metrics, and labels, that
the gateway really defines (observability/metrics.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from prometheus_client.metrics import MetricWrapperBase

from gateway.observability.metrics import Metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "helm/gateway/dashboards/gateway.json"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
SELECTOR = re.compile(r"\b(gateway_[a-z0-9_]+)(?:\{([^}]*)\})?")
MATCHER_LABEL = re.compile(r"([a-z_]+)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|ignoring|on)\s*\(([^)]*)\)")


def exposed_series() -> dict[str, set[str]]:
    """Every series name the gateway can expose, with the label names it carries."""
    series: dict[str, set[str]] = {}
    for metric in vars(Metrics()).values():
        if not isinstance(metric, MetricWrapperBase):
            continue
        for suffix in SUFFIXES[metric._type]:
            labels = set(metric._labelnames) | ({"le"} if suffix == "_bucket" else set())
            series[metric._name + suffix] = labels
    return series


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    return exprs


def test_dashboard_covers_the_operational_questions() -> None:
    titles = " ".join(p["title"].lower() for p in json.loads(DASHBOARD.read_text())["panels"])
    for topic in (
        "request rate",
        "error",
        "first token",
        "tokens",
        "cost",
        "cache hit",
        "rate-limit",
        "breaker",
        "variant",
    ):
        assert topic in titles


@pytest.mark.parametrize("expr", queries())
def test_every_query_names_exposed_metrics_and_their_labels(expr: str) -> None:
    series = exposed_series()
    used = SELECTOR.findall(expr)
    assert used, "a query without a gateway metric"
    labels_in_expr: set[str] = set()
    for name, matchers in used:
        assert name in series, f"{name} is not exposed by the gateway"
        matched = set(MATCHER_LABEL.findall(matchers))
        assert matched <= series[name], f"{name} has no label {matched - series[name]}"
        labels_in_expr |= series[name]
    for group in GROUPING.findall(expr):
        grouped = {label.strip() for label in group.split(",") if label.strip()}
        assert grouped <= labels_in_expr, f"grouping by unknown labels {grouped - labels_in_expr}"
