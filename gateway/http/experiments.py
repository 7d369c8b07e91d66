"""Routing and experiment endpoints: the route dry-run, feedback, experiment reports."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import GatewayError, InvalidRequest, ResourceNotFound, StateUnavailable
from gateway.experiments.report import build_report
from gateway.experiments.store import OUTCOMES, ExperimentStore, Feedback, Link
from gateway.http.admin_auth import Handler, admin_only, caller, error_response
from gateway.http.openai import REQUEST_ID, CompletionEndpoint
from gateway.http.request import read_body
from gateway.runtime import Runtime

log = logging.getLogger("gateway")
MAX_FEEDBACK_BYTES = 16 * 1024
MAX_SCORE = 1e6  # scores are summed: bounded, so no sum can overflow to inf
DEFAULT_FEEDBACK_TTL = 7 * 24 * 3600.0  # for an experiment removed by a reload


def routes(runtime: Runtime) -> list[Route]:
    return [
        Route(
            "/v1/route/dry-run", CompletionEndpoint(runtime, "chat", dry_run=True), methods=["POST"]
        ),
        Route("/v1/feedback", feedback_endpoint(runtime), methods=["POST"]),
        Route("/admin/experiments/{name}", report_endpoint(runtime), methods=["GET"]),
    ]


def parse_feedback(raw: bytes) -> tuple[str, Feedback]:
    """(request_id, feedback) from a feedback body, or InvalidRequest."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidRequest("The feedback body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The feedback body must be a JSON object.")
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.fullmatch(request_id):
        raise InvalidRequest(
            "'request_id' is required: the x-request-id of an answer.", param="request_id"
        )
    outcome = body.get("outcome")
    if outcome is not None and outcome not in OUTCOMES:
        raise InvalidRequest(f"'outcome' must be one of {', '.join(OUTCOMES)}.", param="outcome")
    score = body.get("score")
    if score is not None and not _valid_score(score):
        raise InvalidRequest(
            f"'score' must be a finite number between {-MAX_SCORE:g} and {MAX_SCORE:g}.",
            param="score",
        )
    if outcome is None and score is None:
        raise InvalidRequest("Give an 'outcome', a 'score', or both.")
    return request_id, Feedback(outcome, None if score is None else float(score))


def _valid_score(score: Any) -> bool:
    if isinstance(score, bool) or not isinstance(score, int | float):
        return False
    return -MAX_SCORE <= score <= MAX_SCORE  # False for NaN and infinities too


def feedback_endpoint(runtime: Runtime) -> Handler:
    async def feedback(request: Request) -> Response:
        try:
            principal = await caller(runtime, request)
            raw = await read_body(request, MAX_FEEDBACK_BYTES)  # bounded, never read whole
            request_id, given = parse_feedback(raw)
            link = await record(runtime, principal.key_id, request_id, given)
        except GatewayError as err:
            return error_response(err)
        return JSONResponse(
            {
                "object": "feedback",
                "request_id": request_id,
                "experiment": link.experiment,
                "variant": link.variant,
            }
        )

    return feedback


async def record(runtime: Runtime, key_id: str, request_id: str, given: Feedback) -> Link:
    """Record the caller's feedback on its own request (links are scoped by key: another
    key's request id reads as unknown)."""
    assert runtime.services is not None
    store = ExperimentStore(runtime.services.state)
    try:
        link = await store.lookup(key_id, request_id)
        if link is None:
            raise ResourceNotFound(
                "No experiment request with this id (unknown or expired).",
                code="request_not_found",
                param="request_id",
            )
        experiment = runtime.config.experiments.get(link.experiment)
        ttl = experiment.feedback_ttl_seconds if experiment else DEFAULT_FEEDBACK_TTL
        await store.record_feedback(request_id, link, given, ttl)
    except GatewayError:
        raise
    except Exception:
        log.warning("feedback not recorded: state backend failed", exc_info=True)
        raise StateUnavailable("Feedback cannot be recorded right now; try again.") from None
    records = runtime.services.records  # kept in PostgreSQL too, when configured
    if records is not None:
        await records.feedback.keep(request_id, link, given.outcome, given.score)
    if experiment is not None:  # bounded labels: configured experiments only
        label = given.outcome or "score"
        runtime.metrics.experiment_feedback.labels(link.experiment, link.variant, label).inc()
    return link


def report_endpoint(runtime: Runtime) -> Handler:
    async def report(request: Request) -> Response:
        name = request.path_params["name"]
        experiment = runtime.config.experiments.get(name)
        if experiment is None or runtime.services is None:
            return error_response(ResourceNotFound(f"No experiment named '{name}'."))
        store = ExperimentStore(runtime.services.state)
        try:
            body = await build_report(store, name, experiment)
        except Exception:
            log.warning("experiment report failed: state backend failed", exc_info=True)
            err = StateUnavailable("The experiment's counters cannot be read right now.")
            return error_response(err)
        return JSONResponse(body)

    return admin_only(runtime, report)
