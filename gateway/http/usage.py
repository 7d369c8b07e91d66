"""`GET /admin/usage?from=&to=&group_by=key|team|model|day`: usage from the ledger.

Behind the admin-key check. 400 on a bad parameter, 404 `ledger_disabled` when no
`state.database` is configured, 503 when the database cannot be reached.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.db.usage import BadUsageQuery, UsageQuery
from gateway.errors import InvalidRequest, ResourceNotFound
from gateway.http.admin_auth import admin_only
from gateway.runtime import Runtime


def usage_routes(runtime: Runtime) -> list[Route]:
    async def usage(request: Request) -> Response:
        params = request.query_params
        try:
            query = UsageQuery.parse(params.get("from"), params.get("to"), params.get("group_by"))
        except BadUsageQuery as err:
            raise InvalidRequest(str(err), param=err.param) from None
        records = runtime.services.records if runtime.services else None
        if records is None:
            raise ResourceNotFound(
                "No usage ledger: set state.database to keep one.", code="ledger_disabled"
            )
        data = await records.usage(query)
        body = {
            "object": "list",
            "group_by": query.group_by,
            "from": query.start.isoformat(),
            "to": query.end.isoformat(),
            "data": data,
        }
        return JSONResponse(body)

    return [Route("/admin/usage", admin_only(runtime, usage), methods=["GET"])]
