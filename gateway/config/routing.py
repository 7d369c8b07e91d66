"""Schema of tiered routes (`routes`), dispatch resilience (`retry`) and `breakers`."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class Section(BaseModel):
    # Same rules as gateway.config.schema.Section (which imports this module).
    model_config = ConfigDict(extra="forbid", frozen=True)


Strategy = Literal["weighted", "least_busy", "latency", "cost"]
FallbackReason = Literal["context_window", "content_policy"]


class RuleConditions(Section):
    """Every condition given must hold; an omitted one matches anything."""

    min_prompt_tokens: int | None = Field(None, ge=0, description="Prompt tokens at least.")
    max_prompt_tokens: int | None = Field(None, ge=0, description="Prompt tokens at most.")
    min_turns: int | None = Field(None, ge=0, description="Messages in the conversation, at least.")
    max_turns: int | None = Field(None, ge=0, description="Messages at most.")
    tools: bool | None = Field(None, description="The request offers tools (or not).")
    json_response: bool | None = Field(None, description="response_format asks for JSON.")
    code: bool | None = Field(None, description="The newest user turn contains code.")
    pattern: str | None = Field(None, description="Regex searched in the newest user turn.")
    keywords: list[str] = Field(default_factory=list, description="Any of these words (no case).")
    metadata: dict[str, str] = Field(default_factory=dict, description="Body `metadata` equals.")
    headers: dict[str, str] = Field(default_factory=dict, description="Request headers equal.")
    teams: list[str] = Field(default_factory=list, description="The key's team is one of these.")

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"invalid regex: {exc}") from None
        return value

    @field_validator("headers")
    @classmethod
    def _lower_names(cls, value: dict[str, str]) -> dict[str, str]:
        return {name.lower(): v for name, v in value.items()}


class RouteRule(Section):
    name: str = Field(min_length=1, description="Shown in x-gateway-route and the access log.")
    when: RuleConditions = RuleConditions()
    target: str = Field(description="The model alias this rule sends to.")


class ClassifierTier(Section):
    target: str = Field(description="The model alias of this tier.")
    examples: list[str] = Field(min_length=1, description="Prompts typical of this tier.")


class ClassifierConfig(Section):
    """Semantic tiering: the newest user turn goes to the tier of its nearest example."""

    threshold: float = Field(0.5, ge=-1, le=1, description="Least cosine similarity to decide.")
    tiers: dict[str, ClassifierTier] = Field(min_length=1)


class RouteConfig(Section):
    """An alias-like name whose ordered rules pick a target alias; first match wins."""

    description: str = ""
    classifier: ClassifierConfig | None = None
    rules: list[RouteRule] = Field(default_factory=list)
    default: str = Field(description="Target alias when no rule matches (required).")

    @model_validator(mode="after")
    def _unique_rule_names(self) -> RouteConfig:
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("rule names must be unique within a route")
        return self


class RetryConfig(Section):
    attempts: int = Field(3, ge=1, le=20, description="Tries per alias across its deployments.")
    backoff_base_ms: float = Field(100.0, ge=0, description="First backoff; doubles, jittered.")
    backoff_max_ms: float = Field(5000.0, ge=0, description="Longest single backoff.")
    attempt_timeout_seconds: float = Field(
        300.0, gt=0, description="Until the reply (for a stream: its first event) arrives."
    )
    deadline_seconds: float = Field(
        600.0, gt=0, description="All attempts and fallbacks of one request together."
    )
    max_retry_after_seconds: float = Field(
        30.0, ge=0, description="A longer Retry-After moves on instead of waiting."
    )
    stream_deadline_seconds: float | None = Field(
        None,
        gt=0,
        description="A stream's whole life, from the request's arrival (default: "
        "deadline_seconds). Past it the stream ends with an error event and [DONE].",
    )


class BreakerConfig(Section):
    enabled: bool = True
    failures: int = Field(5, ge=1, description="Failures within `window_seconds` that open it.")
    window_seconds: float = Field(30.0, gt=0)
    cooldown_seconds: float = Field(15.0, gt=0, description="Open time before a half-open probe.")
    shared: bool = Field(True, description="Share state through Redis when state.backend=redis.")
