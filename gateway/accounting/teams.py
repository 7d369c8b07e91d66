"""Which budget a team has: YAML teams (`auth.teams`) first, then database teams.

Budgets are decided on every request, so the lookup is in memory: YAML teams are fixed
for a config generation, database teams come from the process's TeamCache
(gateway/db/teams.py), refreshed every `auth.team_cache_seconds` off the request path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from gateway.config.access import BudgetConfig, TeamConfig

if TYPE_CHECKING:
    from gateway.config.schema import GatewayConfig
    from gateway.db.records import Records


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


def team_policies(config: GatewayConfig, records: Records | None) -> TeamPolicies:
    """The teams a generation decides budgets with."""
    source = records.teams if records is not None else None
    return TeamPolicies(config.auth.teams, source, config.auth.team_cache_seconds)
