"""Teams created by the admin API: the `teams` table, and each instance's cached copy.

The table is the system of record (name -> TeamConfig as JSON). Budgets are decided on
every request, so no request reads it: TeamCache keeps every team in memory and reloads
them when its copy is older than `auth.team_cache_seconds`, in the background (requests
meanwhile use the copy they have). Only an instance that has never loaded them waits, at
most LOAD_TIMEOUT; an unreachable database leaves the last copy in use (budgets fail open
for teams never loaded, as they do when the state backend is down) and is retried later.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from pydantic import ValidationError

from gateway.accounting.teams import stored_policy
from gateway.config.access import TeamConfig
from gateway.db.keys import unavailable_as_503
from gateway.db.pool import Database
from gateway.errors import DatabaseUnavailable

log = logging.getLogger("gateway")
LOAD_TIMEOUT = 1.0  # the longest a request waits for an instance's first copy


class TeamArchive:
    """The `teams` table; an unreachable database raises DatabaseUnavailable (503)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def put(self, name: str, team: TeamConfig) -> bool:
        """Create or replace `name`'s policy; True when it was created."""
        async with unavailable_as_503():
            pool = await self.db.pool()
            inserted = await pool.fetchval(
                "INSERT INTO teams (name, policy) VALUES ($1, $2::jsonb) "
                "ON CONFLICT (name) DO UPDATE SET policy = EXCLUDED.policy, updated_at = now() "
                "RETURNING xmax = 0",
                name,
                orjson.dumps(stored_policy(team)).decode(),
            )
        return bool(inserted)

    async def delete(self, name: str) -> bool:
        async with unavailable_as_503():
            pool = await self.db.pool()
            done = await pool.execute("DELETE FROM teams WHERE name = $1", name)
        return bool(done == "DELETE 1")

    async def get(self, name: str) -> TeamConfig | None:
        async with unavailable_as_503():
            pool = await self.db.pool()
            policy = await pool.fetchval("SELECT policy::text FROM teams WHERE name = $1", name)
        return None if policy is None else checked(name, policy)

    async def all(self) -> dict[str, TeamConfig]:
        async with unavailable_as_503():
            pool = await self.db.pool()
            rows = await pool.fetch("SELECT name, policy::text AS policy FROM teams ORDER BY name")
        teams = {row["name"]: checked(row["name"], row["policy"]) for row in rows}
        return {name: team for name, team in teams.items() if team is not None}


def checked(name: str, policy: str) -> TeamConfig | None:
    """A stored policy; None (and a log line) for a row edited by hand into nonsense, so
    that it never fails a request or hides the other teams."""
    try:
        return TeamConfig.model_validate_json(policy)
    except ValidationError:
        log.error("team policy in the database is invalid", extra={"team": name})
        return None


class TeamCache:
    """One process's copy of the database teams (kept across config reloads)."""

    def __init__(self, archive: TeamArchive) -> None:
        self.archive = archive
        self._teams: dict[str, TeamConfig] = {}
        self._loaded_at: float | None = None  # monotonic; None: never loaded (or invalidated)
        self._tried_at = float("-inf")
        self._no_wait_until = float("-inf")  # after a failed first load: requests go on
        self._loading: asyncio.Task[None] | None = None
        self._generation = 0  # bumped by invalidate: a load begun before never counts as fresh

    def get(self, name: str) -> TeamConfig | None:
        return self._teams.get(name)

    async def refresh(self, max_age: float) -> None:
        """Start a reload when the copy is older than `max_age` (and no try was that
        recent); wait for it only while there is no fresh copy yet."""
        now = time.monotonic()
        if self._loaded_at is not None and now - self._loaded_at < max_age:
            return
        if self._loading is None and now - self._tried_at >= max_age:
            self._tried_at = now
            self._loading = asyncio.create_task(self._load(self._generation, max_age))
        if self._loaded_at is None and self._loading is not None and now >= self._no_wait_until:
            done, _ = await asyncio.wait({self._loading}, timeout=LOAD_TIMEOUT)
            if not done:
                self._no_wait_until = time.monotonic() + max_age

    def invalidate(self) -> None:
        """This instance changed a team: its next request reloads and waits for it."""
        self._loaded_at = None
        self._tried_at = self._no_wait_until = float("-inf")
        self._generation += 1

    async def _load(self, generation: int, max_age: float) -> None:
        try:
            teams = await asyncio.wait_for(self.archive.all(), timeout=LOAD_TIMEOUT * 5)
        except (DatabaseUnavailable, TimeoutError) as exc:
            self._no_wait_until = time.monotonic() + max_age
            error = type(exc).__name__
            log.warning("teams not reloaded: database unreachable", extra={"error": error})
        else:
            self._teams = teams
            if generation == self._generation:
                self._loaded_at = time.monotonic()
        finally:
            self._loading = None

    async def aclose(self) -> None:
        if self._loading is not None:
            self._loading.cancel()
