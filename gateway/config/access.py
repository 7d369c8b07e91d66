"""The `auth:`, `limits:`, `caps:` and `pricing:` sections: who may call, and how much."""

from __future__ import annotations

import re
from datetime import datetime
from ipaddress import IPv4Network, IPv6Network
from typing import Any, Literal

from limits import parse as parse_rate
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

KEY_ID = r"^[A-Za-z0-9._:\-]{1,64}$"
KEY_HASH = re.compile(r"sha256:[0-9a-f]{64}")
OnExceed = Literal["clamp", "reject"]


class Section(BaseModel):
    # Same rules as schema.Section; not imported from there, as schema.py imports this module.
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_rates(values: list[str]) -> list[str]:
    for value in values:
        try:
            parse_rate(value)
        except ValueError:
            raise ValueError(
                f"'{value}' is not a rate; write e.g. '60/minute', '1000/day', '10 per second'"
            ) from None
    return values


class ScopeLimits(Section):
    """Several windows per scope are allowed: all must have room."""

    requests: list[str] = Field(default_factory=list, description="e.g. ['60/minute', '1000/day']")
    tokens: list[str] = Field(default_factory=list, description="e.g. ['100000/minute']")

    _rates = field_validator("requests", "tokens")(check_rates)

    @property
    def empty(self) -> bool:
        return not self.requests and not self.tokens


class CapsConfig(Section):
    default_max_tokens: int | None = Field(None, ge=1, description="Used when a request has none.")
    max_tokens: int | None = Field(None, ge=1, description="Ceiling on a request's max_tokens.")
    on_exceed: OnExceed | None = Field(None, description="clamp (default) or reject (400).")
    max_input_tokens: int | None = Field(None, ge=1, description="Longer prompts get 400.")
    max_output_tokens: int | None = Field(
        None, ge=1, description="Ceiling on max_tokens x choices (n, best_of) per request."
    )
    max_choices: int | None = Field(None, ge=1, description="Most choices (n, best_of); 400.")


class BudgetConfig(Section):
    tokens_per_day: int | None = Field(None, ge=0)
    tokens_per_month: int | None = Field(None, ge=0)
    usd_per_day: float | None = Field(None, ge=0)
    usd_per_month: float | None = Field(None, ge=0)

    @property
    def empty(self) -> bool:  # on every request with a key: the fields read directly
        return (
            self.tokens_per_day is None
            and self.tokens_per_month is None
            and self.usd_per_day is None
            and self.usd_per_month is None
        )


class KeyPolicy(Section):
    """What a key carries besides its identity; shared by YAML keys and admin-created keys."""

    user: str | None = None
    team: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    models: list[str] | None = Field(None, description="Allowed aliases; omitted: all.")
    expires_at: datetime | None = Field(None, description="ISO 8601; later requests get 401.")
    trusted_user: bool = Field(False, description="May name the user (body `user` / header).")
    may_force_variant: bool = Field(
        False, description="May pick an experiment variant with the x-gateway-variant header."
    )
    limits: ScopeLimits | None = Field(None, description="Overrides limits.default_key.")
    caps: CapsConfig = CapsConfig()
    budget: BudgetConfig = BudgetConfig()


class KeyConfig(KeyPolicy):
    id: str = Field(pattern=KEY_ID, description="Safe to log; used in metrics-free state keys.")
    hash: str | None = Field(None, description="sha256:<hex> of the key (gateway keys create).")
    api_key: SecretStr | None = Field(None, description="The key itself, only as ${ENV}.")

    @model_validator(mode="after")
    def _one_secret(self) -> KeyConfig:
        if (self.hash is None) == (self.api_key is None):
            raise ValueError("give exactly one of 'hash' (sha256:<hex>) or 'api_key' (${ENV})")
        if self.hash is not None and not KEY_HASH.fullmatch(self.hash):
            raise ValueError("hash must be 'sha256:' followed by 64 lowercase hex digits")
        return self


class TeamConfig(Section):
    budget: BudgetConfig = BudgetConfig()


class AuthConfig(Section):
    keys: list[KeyConfig] = Field(default_factory=list)
    admin_key: SecretStr | None = Field(None, description="Protects /admin; only as ${ENV}.")
    teams: dict[str, TeamConfig] = Field(default_factory=dict)
    user_header: str = Field("x-gateway-user", description="Header a trusted key names users by.")
    key_cache_seconds: float = Field(
        1.0, gt=0, le=60, description="How long an instance trusts its copy of a dynamic key."
    )
    team_cache_seconds: float = Field(
        5.0, gt=0, le=300, description="How often an instance reloads the database's teams."
    )

    @property
    def enabled(self) -> bool:
        """No keys and no admin key: every request runs as the anonymous principal."""
        return bool(self.keys) or self.admin_key is not None

    @model_validator(mode="after")
    def _unique_ids(self) -> AuthConfig:
        seen: set[str] = set()
        for key in self.keys:
            if key.id in seen:
                raise ValueError(f"duplicate key id '{key.id}'")
            seen.add(key.id)
        return self


class LimitsConfig(Section):
    on_backend_error: Literal["open", "closed"] = Field(
        "open", description="Redis unreachable: limit per process (open) or refuse (503)."
    )
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list, description="Peers whose X-Forwarded-For is believed."
    )
    default_key: ScopeLimits = ScopeLimits()
    user: ScopeLimits = ScopeLimits()
    ip: ScopeLimits = Field(ScopeLimits(), description="Per client IP, before key checks.")
    failed_auth_ip: list[str] = Field(
        ["20/minute"], description="Failed authentications per IP before 429."
    )
    models: dict[str, ScopeLimits] = Field(default_factory=dict, description="Per model alias.")
    global_: ScopeLimits = Field(ScopeLimits(), alias="global")
    default_completion_estimate: int = Field(
        256, ge=0, description="Completion tokens reserved when a request sets no max_tokens."
    )

    _rates = field_validator("failed_auth_ip")(check_rates)


class ModelPrice(Section):
    input_per_mtok: float = Field(ge=0, description="USD per million prompt tokens.")
    output_per_mtok: float = Field(ge=0, description="USD per million completion tokens.")


class CapsSection(Section):
    on_exceed: OnExceed = Field("clamp", description="Default for a too-large max_tokens.")
    max_choices: int = Field(
        8, ge=1, description="Most choices (n, best_of) any request may ask for; more get 400."
    )
    models: dict[str, CapsConfig] = Field(default_factory=dict, description="Per model alias.")
