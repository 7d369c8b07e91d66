"""Every Prometheus metric the gateway exposes, defined in one place.

Labels have bounded cardinality: endpoint, model alias, deployment, provider, status
class, reason. Never a user, key, request id or prompt.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # `_created` series double the exposition for no dashboard use

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests",
            "Requests answered, by endpoint, model alias and status class.",
            ["endpoint", "model", "status_class"],
            registry=r,
        )
        self.request_duration = Histogram(
            "gateway_request_duration_seconds",
            "Time from request received to the last byte sent.",
            ["endpoint", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.time_to_first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Time from request received to the first stream event sent.",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "gateway_overhead_seconds",
            "Time spent in the gateway itself, excluding waiting on providers.",
            ["endpoint"],
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.upstream_duration = Histogram(
            "gateway_upstream_duration_seconds",
            "Time until a provider answered (headers received).",
            ["provider", "deployment"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.upstream_errors = Counter(
            "gateway_upstream_errors",
            "Failed provider calls, by deployment and reason.",
            ["provider", "deployment", "reason"],
            registry=r,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens by model alias and direction (input = prompt, output = completion).",
            ["model", "direction"],
            registry=r,
        )
        self.in_flight = Gauge(
            "gateway_in_flight_requests",
            "Requests being served now.",
            registry=r,
            multiprocess_mode="livesum",
        )


def status_class(status: int) -> str:
    return f"{status // 100}xx"
