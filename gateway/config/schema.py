"""The configuration schema. Every model is frozen and rejects unknown keys.

Each field's description is the config reference (README "Configuration").
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from gateway.config.access import AuthConfig, CapsSection, LimitsConfig, ModelPrice
from gateway.config.cache import CacheConfig
from gateway.config.experiments import ExperimentConfig
from gateway.config.operations import ReloadConfig, TracingConfig
from gateway.config.routing import BreakerConfig, FallbackReason, RetryConfig, RouteConfig, Strategy


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(Section):
    host: str = Field("127.0.0.1", description="Interface to bind.")
    port: int = Field(8080, ge=0, le=65535, description="TCP port to bind.")
    workers: int = Field(1, ge=1, description="Worker processes (gunicorn/uvicorn).")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Request body limit.")
    shutdown_grace_seconds: float = Field(30.0, ge=0, description="Drain time on SIGTERM.")
    unready_seconds: float = Field(
        0.0, ge=0, description="On SIGTERM, serve this long unready before closing the port."
    )
    reload: ReloadConfig = ReloadConfig()
    # Connection limits (gateway/connection_guard.py): enforced per connection, before the app.
    max_header_bytes: int = Field(
        64 * 1024, ge=4096, description="Request line and headers together; more gets 431."
    )
    max_header_line_bytes: int = Field(
        32 * 1024, ge=1024, description="One header line (or the request line); more gets 431."
    )
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="To receive a request's head, from connecting or its first byte."
    )
    body_timeout_seconds: float = Field(
        60.0, gt=0, description="To receive a whole request body once its head has arrived."
    )
    keepalive_seconds: float = Field(
        75.0,
        gt=0,
        description="Idle time between requests on a connection (above typical "
        "load balancer idle timeouts, 60 s).",
    )
    max_connections: int | None = Field(
        None,
        ge=1,
        description="Open client connections per process. At the cap the oldest idle one is "
        "closed, or the newcomer gets 503. Default: half the file-descriptor limit less 32 "
        "(each proxied request also holds an upstream socket).",
    )


class StateConfig(Section):
    backend: Literal["memory", "redis"] = Field(
        "memory", description="Where shared state lives: this process, or Redis for many."
    )
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis URL (redis://, rediss://)."
    )
    key_prefix: str = Field("gw:", description="Prefix of every Redis key this gateway writes.")
    redis_pool_size: int = Field(
        64,
        ge=1,
        le=10_000,
        description="Connections per Redis client (state, limits) per process; a request "
        "that finds them all busy waits for one (back-pressure, never an outage). "
        "Plain and unix URLs; Sentinel and Cluster use redis-py's own pools.",
    )
    redis_pool_timeout_seconds: float = Field(
        10.0,
        gt=0,
        le=300,
        description="How long a Redis call waits for a pooled connection before it gives "
        "up (limits then answer 503, budgets and caches skip Redis for that request).",
    )
    lease_fraction: float = Field(
        0.01,
        ge=0,
        le=0.1,
        description="Of each shared limit and budget, the slice one instance may hold and "
        "spend without a Redis round trip (a lease; at most 500 requests' worth, only when "
        "that is at least 2). Never lets a limit be passed: leased room is counted in "
        "Redis when granted, and none is granted near a limit. 0: every decision in Redis.",
    )
    lease_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How long a lease may go unused before the instance gives back what "
        "it did not spend (a lease in use lives on, within its counter's period).",
    )
    database: SecretStr | None = Field(
        None,
        description="PostgreSQL URL (as ${DATABASE_URL}): the system of record for admin-created "
        "keys, the usage ledger, experiment feedback and stored responses. Empty: none.",
    )

    @field_validator("database", mode="before")
    @classmethod
    def _postgres_url(cls, value: object) -> object:
        if value == "":
            return None  # `${DATABASE_URL:-}` unset: no database
        if isinstance(value, str) and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")  # the value is a secret: not echoed
        return value


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = Field(True, description="One JSON line per request.")
    log_prompts: bool = Field(False, description="Include prompt/completion text (redacted).")


class MetricsConfig(Section):
    enabled: bool = True
    token: SecretStr | None = Field(None, description="Bearer token required on /metrics.")


class TimeoutConfig(Section):
    connect: float = Field(5.0, gt=0, description="Seconds to open a connection.")
    read: float = Field(600.0, gt=0, description="Seconds between bytes from the provider.")
    write: float = Field(30.0, gt=0)
    pool: float = Field(10.0, gt=0, description="Seconds to wait for a pooled connection.")


class MockConfig(Section):
    """The built-in deterministic provider."""

    mode: Literal["echo", "fixed", "tools", "json"] = Field(
        "echo",
        description="Echo the last user turn, fixed text, call the first tool (then quote "
        "its result), or answer JSON valid for response_format.",
    )
    text: str = "Hello from the gateway's mock provider."
    latency_ms: float = Field(0.0, ge=0, description="Delay before the first byte.")
    chunks: int = Field(5, ge=1, description="Stream chunks the reply is split into.")
    chunk_delay_ms: float = Field(0.0, ge=0)
    prompt_tokens: int | None = Field(None, ge=0, description="Fixed usage; default counts words.")
    completion_tokens: int | None = Field(None, ge=0)
    fail_status: int | None = Field(None, ge=400, le=599, description="Answer every call with it.")
    fail_message: str = "mock provider failure"
    fail_after_chunks: int | None = Field(None, ge=0, description="Break streams after k chunks.")
    embedding_dim: int = Field(8, ge=1, le=4096)


class ProviderConfig(Section):
    kind: Literal["openai", "litellm", "mock", "anthropic"]
    base_url: str | None = Field(
        None, description="API base, e.g. https://api.openai.com/v1 (anthropic: its /v1 default)."
    )
    api_key: SecretStr | None = Field(None, description="Provider key; only as ${ENV_VAR}.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra upstream headers.")
    timeout: TimeoutConfig = TimeoutConfig()
    max_connections: int = Field(100, ge=1, description="Connection pool size.")
    max_keepalive: int = Field(
        100,
        ge=0,
        description="Idle connections kept for reuse (each dropped after 15 s unused). Below "
        "the requests in flight, the pool closes and reopens connections under load.",
    )
    litellm_provider: str | None = Field(
        None, description="litellm provider prefix (anthropic, gemini, bedrock …)."
    )
    mock: MockConfig = MockConfig()
    responses: Literal["translate", "native"] = Field(
        "translate",
        description="Responses API requests: translate to Chat Completions, or (kind openai, "
        "an upstream that serves /responses) send them as they came, with the gateway's "
        "model name and output bound applied.",
    )

    @model_validator(mode="after")
    def _check_kind_fields(self) -> ProviderConfig:
        if self.responses == "native" and self.kind != "openai":
            raise ValueError("responses: native needs kind 'openai'")
        if self.kind == "openai" and not self.base_url:
            raise ValueError("base_url is required for kind 'openai'")
        if self.kind == "litellm" and not self.litellm_provider:
            raise ValueError("litellm_provider is required for kind 'litellm'")
        return self


class DeploymentConfig(Section):
    provider: str = Field(description="Name of a provider in `providers`.")
    model: str = Field(description="The model name the provider knows.")
    weight: float = Field(1.0, gt=0, description="Share of traffic among the alias's deployments.")

    @property
    def name(self) -> str:
        return f"{self.provider}/{self.model}"


class ModelConfig(Section):
    deployments: list[DeploymentConfig] = Field(min_length=1)
    description: str = ""
    cache: bool = Field(True, description="false: never cache this model's replies.")
    # Dispatch policy (gateway/dispatch): which deployment, how often to retry, where next.
    strategy: Strategy = Field("weighted", description="How a deployment is picked.")
    fallbacks: list[str] = Field(default_factory=list, description="Aliases tried in order next.")
    fallback_on: list[FallbackReason] = Field(
        default_factory=list, description="Also fall back on these non-retryable errors."
    )
    retry: RetryConfig = RetryConfig()


class GatewayConfig(Section):
    server: ServerConfig = ServerConfig()
    state: StateConfig = StateConfig()
    logging: LoggingConfig = LoggingConfig()
    metrics: MetricsConfig = MetricsConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    tracing: TracingConfig = TracingConfig()
    cache: CacheConfig = CacheConfig()
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    experiments: dict[str, ExperimentConfig] = Field(default_factory=dict)
    breakers: BreakerConfig = BreakerConfig()
    # Access control (gateway/config/access.py): keys, rate limits, token caps, prices.
    auth: AuthConfig = AuthConfig()
    limits: LimitsConfig = LimitsConfig()
    caps: CapsSection = CapsSection()
    pricing: dict[str, ModelPrice] = Field(default_factory=dict)
