"""Every Prometheus metric the gateway exposes, defined in one place.

Labels have bounded cardinality: endpoint, model alias, deployment, provider, status
class, reason. Never a user, key, request id or prompt.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

disable_created_metrics()  # type: ignore[no-untyped-call]  # `_created` series double the exposition for no dashboard use

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
        self._routing_metrics(r)
        self._operations_metrics(r)
        self._cache_metrics(r)
        self._access_metrics(r)
        self._ledger_metrics(r)

    # -- routing, dispatch resilience and experiments (gateway/routing, dispatch, experiments)
    def _routing_metrics(self, r: CollectorRegistry) -> None:
        self.routing_decisions = Counter(
            "gateway_routing_decisions",
            "Route decisions, by route and the target alias chosen.",
            ["route", "target"],
            registry=r,
        )
        self.retries = Counter(
            "gateway_retries",
            "Attempts after a retryable failure, by model alias.",
            ["model"],
            registry=r,
        )
        self.fallbacks = Counter(
            "gateway_fallbacks",
            "Moves to a fallback alias after the previous one failed.",
            ["model", "fallback"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "gateway_breaker_state",
            "Circuit breaker per deployment: 0 closed, 1 half-open, 2 open.",
            ["deployment"],
            registry=r,
            multiprocess_mode="max",
        )
        self.connection_limits = Counter(
            "gateway_connection_limits",
            "Client connections closed or refused at a limit (connection_guard), by reason.",
            ["reason"],
            registry=r,
        )
        self.experiment_requests = Counter(
            "gateway_experiment_requests",
            "Requests in an experiment, by experiment, variant and status class.",
            ["experiment", "variant", "status_class"],
            registry=r,
        )
        self.experiment_duration = Histogram(
            "gateway_experiment_request_duration_seconds",
            "Request duration by experiment and variant.",
            ["experiment", "variant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.experiment_tokens = Counter(
            "gateway_experiment_tokens",
            "Tokens by experiment, variant and direction.",
            ["experiment", "variant", "direction"],
            registry=r,
        )
        self.experiment_feedback = Counter(
            "gateway_experiment_feedback",
            "Feedback received, by experiment, variant and outcome.",
            ["experiment", "variant", "outcome"],
            registry=r,
        )

    # -- operations: config reloads (gateway/reload.py)
    def _operations_metrics(self, r: CollectorRegistry) -> None:
        self.config_reloads = Counter(
            "gateway_config_reloads",
            "Config reload attempts, by trigger and result (success, invalid, failed).",
            ["trigger", "result"],
            registry=r,
        )
        self.config_loaded_at = Gauge(
            "gateway_config_last_success_timestamp_seconds",
            "Unix time the running config was loaded or last reloaded.",
            registry=r,
            multiprocess_mode="max",
        )

    # -- access control: auth, rate limits, budgets (gateway/pipeline/{auth,ratelimit,caps}.py)
    def _access_metrics(self, r: CollectorRegistry) -> None:
        self.auth_failures = Counter(
            "gateway_auth_failures",
            "Refused authentications, by reason (missing, unknown, expired, forbidden_model).",
            ["reason"],
            registry=r,
        )
        self.ratelimit_refusals = Counter(
            "gateway_ratelimit_refusals",
            "Requests refused with 429 by a rate limit, by scope (key, user, ip, model …).",
            ["scope"],
            registry=r,
        )
        self.redis_errors = Counter(
            "gateway_redis_errors",
            "Failed Redis calls, by component (ratelimit, budget, auth).",
            ["component"],
            registry=r,
        )
        self.ratelimit_fallback = Gauge(
            "gateway_ratelimit_fallback",
            "1 while rate limits run on the per-process fallback (Redis unreachable).",
            registry=r,
            multiprocess_mode="max",
        )
        self.budget_refusals = Counter(
            "gateway_budget_refusals",
            "Requests refused with insufficient_quota, by scope (key, team).",
            ["scope"],
            registry=r,
        )
        self.debit_queue_depth = Gauge(
            "gateway_debit_queue_depth",
            "Spend and token debits waiting to be written to Redis, by store (spend, limits).",
            ["store"],
            registry=r,
            multiprocess_mode="livesum",
        )
        self.debits_dropped = Counter(
            "gateway_debits_dropped",
            "Debits given up (retry queue full, or unwritten at shutdown), by store.",
            ["store"],
            registry=r,
        )
        self.redis_up = Gauge(
            "gateway_redis_up",
            "1 while this process's shared Redis health view says Redis answers.",
            registry=r,
            multiprocess_mode="min",
        )
        self.redis_skipped = Counter(
            "gateway_redis_skipped",
            "Redis calls not sent because Redis is marked down (served by their fallback).",
            registry=r,
        )
        self.cost_usd = Counter(
            "gateway_cost_usd",
            "Spend in USD by model alias, from reported (or estimated) usage.",
            ["model"],
            registry=r,
        )

    # -- response cache (gateway/pipeline/cache.py)
    def _cache_metrics(self, r: CollectorRegistry) -> None:
        self.cache_lookups = Counter(
            "gateway_cache_lookups",
            "Cache lookups, by model alias, kind (exact, semantic) and result (hit, miss, bypass).",
            ["model", "kind", "result"],
            registry=r,
        )
        self.cache_similarity = Histogram(
            "gateway_cache_semantic_similarity",
            "Best cosine similarity found by each semantic lookup (served or not).",
            buckets=(0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99, 1.0),
            registry=r,
        )
        self.cache_stores = Counter(
            "gateway_cache_stores",
            "Replies stored in the cache, by kind (exact, semantic).",
            ["kind"],
            registry=r,
        )

    # -- the usage ledger in PostgreSQL (gateway/db/ledger.py)
    def _ledger_metrics(self, r: CollectorRegistry) -> None:
        self.ledger_queue = Gauge(
            "gateway_ledger_queue_rows",
            "Ledger rows waiting to be written to PostgreSQL.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.ledger_rows = Counter(
            "gateway_ledger_rows",
            "Ledger rows by outcome (written, dropped: queue full, refused, lost at shutdown).",
            ["outcome"],
            registry=r,
        )
        self.ledger_write_errors = Counter(
            "gateway_ledger_write_errors",
            "Failed ledger batch writes (the rows stay queued and are retried).",
            registry=r,
        )


def status_class(status: int) -> str:
    return f"{status // 100}xx"
