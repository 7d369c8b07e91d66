"""Routing and experiment endpoints: the route dry-run, feedback, experiment reports."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.auth.keys import KeyStore
from gateway.config.access import AuthConfig
from gateway.errors import AuthenticationFailed, GatewayError, InvalidRequest
from gateway.experiments.report import build_report
from gateway.experiments.store import OUTCOMES, ExperimentStore
from gateway.http.admin_auth import admin_only
from gateway.http.openai import CompletionEndpoint
from gateway.pipeline.auth import presented_key
from gateway.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]
MAX_FEEDBACK_BYTES = 16 * 1024


class NotFound(InvalidRequest):
    status = 404


def routes(runtime: Runtime) -> list[Route]:
    return [
        Route(
            "/v1/route/dry-run", CompletionEndpoint(runtime, "chat", dry_run=True), methods=["POST"]
        ),
        Route("/v1/feedback", feedback_endpoint(runtime), methods=["POST"]),
        Route("/admin/experiments/{name}", report_endpoint(runtime), methods=["GET"]),
    ]


def _error(err: GatewayError) -> Response:
    return JSONResponse(err.to_body(), status_code=err.http_status)


def parse_feedback(raw: bytes) -> tuple[str, str | None, float | None]:
    """(request_id, outcome, score) from a feedback body, or InvalidRequest."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The feedback body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The feedback body must be a JSON object.")
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not request_id:
        raise InvalidRequest("'request_id' is required.", param="request_id")
    outcome = body.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidRequest(f"'outcome' must be one of {', '.join(OUTCOMES)}.", param="outcome")
    score = body.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise InvalidRequest("'score' must be a number.", param="score")
    if outcome is None and score is None:
        raise InvalidRequest("Give an 'outcome', a 'score', or both.")
    return request_id, outcome, None if score is None else float(score)


class FeedbackAuth:
    """When keys are configured, feedback needs a valid key: the one that made the request
    (anyone else is told the request does not exist)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._keys: tuple[AuthConfig, KeyStore] | None = None

    async def key_id(self, request: Request) -> str | None:
        """The caller's key id; None when auth is off. AuthenticationFailed when invalid."""
        config = self.runtime.config.auth
        if not config.enabled or self.runtime.services is None:
            return None
        if self._keys is None or self._keys[0] is not config:  # rebuilt after a reload
            self._keys = (config, KeyStore(config, self.runtime.services.state))
        presented = presented_key(dict(request.headers))
        principal = await self._keys[1].lookup(presented) if presented else None
        if principal is None:
            raise AuthenticationFailed("A valid API key is required to send feedback.")
        return principal.key_id


def feedback_endpoint(runtime: Runtime) -> Handler:
    auth = FeedbackAuth(runtime)

    async def feedback(request: Request) -> Response:
        raw = await request.body()
        try:
            if len(raw) > MAX_FEEDBACK_BYTES:
                raise InvalidRequest("The feedback body is too large.")
            caller = await auth.key_id(request)
            request_id, outcome, score = parse_feedback(raw)
            assert runtime.services is not None
            store = ExperimentStore(runtime.services.state)
            link = await store.lookup(request_id)
            if link is None or (caller is not None and link.key_id != caller):
                raise NotFound(
                    f"No experiment request with id '{request_id}' (unknown or expired).",
                    code="request_not_found",
                    param="request_id",
                )
        except GatewayError as err:
            return _error(err)
        await store.record_feedback(link.experiment, link.variant, outcome, score)
        records = runtime.services.records  # kept in PostgreSQL too, when configured
        if records is not None:
            await records.feedback.keep(request_id, link, outcome, score)
        if link.experiment in runtime.config.experiments:  # bounded labels: configured only
            label = outcome or "score"
            runtime.metrics.experiment_feedback.labels(link.experiment, link.variant, label).inc()
        return JSONResponse(
            {
                "object": "feedback",
                "request_id": request_id,
                "experiment": link.experiment,
                "variant": link.variant,
            }
        )

    return feedback


def report_endpoint(runtime: Runtime) -> Handler:
    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        experiment = runtime.config.experiments.get(name)
        if experiment is None or runtime.services is None:
            return _error(NotFound(f"No experiment named '{name}'.", code="not_found"))
        store = ExperimentStore(runtime.services.state)
        return JSONResponse(await build_report(store, name, experiment))

    return admin_only(runtime, report)
