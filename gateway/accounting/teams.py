"""Which budget a team has: YAML teams (`auth.teams`) first, then database teams.

Budgets are decided on every request, so the lookup is in memory: YAML teams are fixed
for a config generation, database teams come from the process's TeamCache
(gateway/db/teams.py), refreshed every `auth.team_cache_seconds` off the request path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import ValidationError

from gateway.config.access import BudgetConfig, TeamConfig

if TYPE_CHECKING:
    from gateway.config.schema import GatewayConfig


# A key id's characters; not only dots, which no URL path can name (clients fold `..`).
TEAM_NAME = re.compile(r"(?!\.+$)[A-Za-z0-9._:\-]{1,64}")


class BadTeam(ValueError):
    def __init__(self, message: str, param: str | None) -> None:
        super().__init__(message)
        self.param = param


def parse_team(data: Any) -> tuple[str, TeamConfig]:
    """(name, policy) from `{"name": ..., <the YAML's team fields>}`; BadTeam names the
    field at fault (the admin API and `gateway teams import` check teams alike)."""
    if not isinstance(data, dict):
        raise BadTeam("The team must be a JSON object.", None)
    fields = dict(data)
    name = fields.pop("name", None)
    if not (isinstance(name, str) and TEAM_NAME.fullmatch(name)):
        raise BadTeam("'name' must be 1-64 characters A-Z a-z 0-9 . _ : - (not only dots)", "name")
    try:
        return name, TeamConfig.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadTeam(f"{where}: {first['msg']}", where) from None


def stored_policy(team: TeamConfig) -> dict[str, Any]:
    """A team's policy as the `teams` table and `gateway teams export` keep it."""
    return team.model_dump(mode="json", exclude_defaults=True)


class TeamSource(Protocol):
    """Teams kept outside the config file (the database's, through a cache)."""

    def get(self, name: str) -> TeamConfig | None: ...

    async def refresh(self, max_age: float) -> None: ...


class TeamPolicies:
    def __init__(
        self,
        configured: Mapping[str, TeamConfig] | None = None,
        source: TeamSource | None = None,
        max_age: float = 5.0,
    ) -> None:
        self.configured = configured or {}
        self.source = source
        self.max_age = max_age

    async def refresh(self) -> None:
        """Cheap: a clock comparison, unless this process has no copy of the teams yet."""
        if self.source is not None:
            await self.source.refresh(self.max_age)

    def policy(self, name: str | None) -> TeamConfig | None:
        if not name:
            return None
        team = self.configured.get(name)
        if team is None and self.source is not None:
            team = self.source.get(name)
        return team

    def budget(self, name: str | None) -> BudgetConfig | None:
        team = self.policy(name)
        return team.budget if team is not None else None


def team_policies(config: GatewayConfig, stored: TeamSource | None) -> TeamPolicies:
    """The teams a generation decides budgets with (`stored`: the database's, if any)."""
    return TeamPolicies(config.auth.teams, stored, config.auth.team_cache_seconds)
