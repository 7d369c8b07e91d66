"""The admin API for teams: `POST /admin/teams` (create or replace a team's policy),
`GET /admin/teams`, `GET /admin/teams/{name}`, `DELETE /admin/teams/{name}`.

Behind the admin-key check. Teams written here live in the `teams` table (so writes need
`state.database`: 404 `teams_need_database` without it, 503 while it is unreachable) and
reach every instance within `auth.team_cache_seconds`. Teams of the config file
(`auth.teams`) are listed too but stay read-only: 409 `team_in_config`; they win over a
database team of the same name. A body is the YAML's team policy plus its `name`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.accounting.budgets import SpendStore
from gateway.accounting.teams import TEAM_NAME, BadTeam, parse_team
from gateway.config.access import TeamConfig
from gateway.errors import Conflict, InvalidRequest, ResourceNotFound
from gateway.http.admin_auth import Handler, admin_only
from gateway.http.request import read_body
from gateway.runtime import Runtime

if TYPE_CHECKING:  # asyncpg is optional: the database code is imported only when configured
    from gateway.db.records import Records

MAX_TEAM_BODY_BYTES = 8 * 1024  # a team's policy is a few fields; larger bodies get 413


def team_routes(runtime: Runtime) -> list[Route]:
    api = TeamsApi(runtime)

    def guard(handler: Handler) -> Handler:
        return admin_only(runtime, handler)

    return [
        Route("/admin/teams", guard(api.put), methods=["POST"]),
        Route("/admin/teams", guard(api.list), methods=["GET"]),
        Route("/admin/teams/{name}", guard(api.get), methods=["GET"]),
        Route("/admin/teams/{name}", guard(api.delete), methods=["DELETE"]),
    ]


def team_from_body(raw: bytes) -> tuple[str, TeamConfig]:
    """(name, policy) from a request body; InvalidRequest names the bad field."""
    try:
        return parse_team(orjson.loads(raw or b"{}"))
    except orjson.JSONDecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    except BadTeam as err:
        raise InvalidRequest(str(err), param=err.param) from None


def path_name(request: Request) -> str:
    """The team named in the path; a name no team can have is not echoed back."""
    name = str(request.path_params["name"])
    if not TEAM_NAME.fullmatch(name):
        raise ResourceNotFound("No team by that name.", code="team_not_found")
    return name


def public(name: str, team: TeamConfig, source: str) -> dict[str, Any]:
    return {"name": name, "source": source, **team.model_dump(mode="json", exclude_none=True)}


class TeamsApi:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def configured(self) -> dict[str, TeamConfig]:
        return self.runtime.config.auth.teams

    def records(self) -> Records:
        services = self.runtime.services
        records = services.records if services is not None else None
        if records is None:
            raise ResourceNotFound(
                "Teams are written to the database: set state.database to manage them here.",
                code="teams_need_database",
            )
        return records

    def refuse_configured(self, name: str) -> None:
        if name in self.configured():
            raise Conflict(
                f"The team '{name}' is defined in the config file; change it there.",
                code="team_in_config",
                param="name",
            )

    async def put(self, request: Request) -> Response:
        name, team = team_from_body(await read_body(request, MAX_TEAM_BODY_BYTES))
        self.refuse_configured(name)
        records = self.records()
        created = await records.team_archive.put(name, team)
        records.teams.invalidate()
        return JSONResponse(public(name, team, "database"), status_code=201 if created else 200)

    async def list(self, request: Request) -> Response:
        teams = [public(n, t, "config") for n, t in sorted(self.configured().items())]
        services = self.runtime.services
        if services is not None and services.records is not None:
            stored = await services.records.team_archive.all()
            configured = self.configured()
            teams += [public(n, t, "database") for n, t in stored.items() if n not in configured]
        return JSONResponse({"object": "list", "data": teams})

    async def get(self, request: Request) -> Response:
        name = path_name(request)
        team, source = self.configured().get(name), "config"
        services = self.runtime.services
        if team is None and services is not None and services.records is not None:
            team, source = await services.records.team_archive.get(name), "database"
        if team is None or services is None:
            raise ResourceNotFound(f"No team named '{name}'.", code="team_not_found")
        body = public(name, team, source)
        body["usage"] = await SpendStore(services.state).usage("team", name)
        return JSONResponse(body)

    async def delete(self, request: Request) -> Response:
        name = path_name(request)
        self.refuse_configured(name)
        records = self.records()
        deleted = await records.team_archive.delete(name)
        if not deleted:
            raise ResourceNotFound(f"No team named '{name}'.", code="team_not_found")
        records.teams.invalidate()
        return JSONResponse({"name": name, "deleted": True})
