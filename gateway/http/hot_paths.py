"""The OpenAI POST endpoints, reached without Starlette's router and exception layer.

These endpoints turn every failure into a reply themselves (parse errors, the pipeline's
GatewayErrors, unexpected exceptions in `Observe`), so the per-request wrapping of
routing and exception handling is pure cost there. Every other path, and every other
method on these paths, goes through Starlette as usual. Measured in-process with the mock
provider: see the commit that added this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Receive, Scope, Send


class HotPaths:
    def __init__(self, app: ASGIApp, endpoints: Mapping[str, ASGIApp]) -> None:
        self.app = app
        self.endpoints = dict(endpoints)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(scope, receive, send)
                return
        await self.app(scope, receive, send)
