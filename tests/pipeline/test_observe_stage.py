"""The observe stage in-process: every error becomes a reply with its status and body, a bug
a 500 that tells nothing of it, and each outcome is counted under a configured alias only
(tests/pipeline/test_observe_fields.py reads a real gateway's log and metrics)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    PermissionDenied,
    QuotaExceeded,
    RateLimited,
    Unavailable,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.observability.metrics import Metrics
from gateway.pipeline.observe import Observe
from gateway.streaming.relay import relay
from tests.fakes import Answer, context, mock_provider, via


def observe() -> Observe:
    return Observe(Metrics(), access_log=False, aliases=frozenset({"m"}))


def requests_counted(stage: Observe, endpoint: str, model: str, status_class: str) -> float:
    labels = {"endpoint": endpoint, "model": model, "status_class": status_class}
    return stage.metrics.registry.get_sample_value("gateway_requests_total", labels) or 0.0


@pytest.mark.parametrize(
    ("error", "status", "error_type", "code"),
    [
        (InvalidRequest("bad", code="c", param="p"), 400, "invalid_request_error", "c"),
        (ModelNotFound("nope"), 404, "invalid_request_error", "model_not_found"),
        (AuthenticationFailed("who?"), 401, "authentication_error", None),
        (
            PermissionDenied("no", code="model_not_allowed"),
            403,
            "permission_error",
            "model_not_allowed",
        ),
        (
            RateLimited("slow down", code="rate_limit_exceeded_key"),
            429,
            "rate_limit_error",
            "rate_limit_exceeded_key",
        ),
        (QuotaExceeded("spent"), 429, "insufficient_quota", "insufficient_quota"),
        (Unavailable("later"), 503, "server_error", None),
        (UpstreamError("upstream 404", upstream_status=404), 404, "upstream_error", None),
        (UpstreamError("upstream 500", upstream_status=500), 502, "upstream_error", None),
        (UpstreamTimeout("too slow"), 504, "timeout", None),
    ],
)
async def test_a_gateway_error_becomes_its_reply(
    error: GatewayError, status: int, error_type: str, code: str | None
) -> None:
    ctx = context()
    reply = await observe()(ctx, Answer(error=error))
    assert reply.status == status and reply.error is error
    assert reply.body == {
        "error": {"message": error.message, "type": error_type, "param": error.param, "code": code}
    }
    assert float(ctx.response_headers["x-gateway-overhead-ms"]) >= 0


async def test_an_errors_headers_reach_the_reply() -> None:
    error = RateLimited(
        "slow down", headers={"retry-after": "7", "x-ratelimit-remaining-requests": "0"}
    )
    reply = await observe()(context(), Answer(error=error))
    assert reply.headers == {"retry-after": "7", "x-ratelimit-remaining-requests": "0"}


@pytest.mark.parametrize(
    "bug", [RuntimeError("db password=hunter2"), KeyError("choices"), ZeroDivisionError()]
)
async def test_an_unexpected_exception_is_a_500_that_tells_nothing_of_it(bug: Exception) -> None:
    reply = await observe()(context(), Answer(error=bug))
    assert reply.status == 500
    assert reply.body is not None
    error = reply.body["error"]
    assert (error["type"], error["message"]) == (
        "api_error",
        "The gateway failed to handle this request.",
    )
    assert "hunter2" not in str(reply.body) and "choices" not in str(reply.body)


@pytest.mark.parametrize(
    ("alias", "target", "ingress", "endpoint", "model"),
    [
        ("m", "", "openai", "chat", "m"),  # refused before routing: the alias asked for
        ("made-up-1", "", "openai", "chat", "unknown"),  # clients cannot mint label values
        ("m", "", "anthropic", "anthropic", "m"),  # counted under the client's format
        ("m", "m", "responses", "responses", "m"),
    ],
)
async def test_refused_requests_are_counted_under_a_configured_alias_only(
    alias: str, target: str, ingress: str, endpoint: str, model: str
) -> None:
    stage = observe()
    ctx = context(alias=alias)
    ctx.target_alias, ctx.ingress = target, ingress  # type: ignore[assignment]
    reply = await stage(ctx, Answer(error=PermissionDenied("no")))
    assert requests_counted(stage, endpoint, model, "4xx") == 0  # counted when it completes
    await reply.close()
    await reply.close()
    assert requests_counted(stage, endpoint, model, "4xx") == 1
    assert stage.metrics.registry.get_sample_value("gateway_in_flight_requests") == 0


SIX_WORDS = {"messages": [{"role": "user", "content": "one two three four five six"}]}
ASK_USAGE = {"stream_options": {"include_usage": True}}


@pytest.mark.parametrize(
    ("body", "completion_tokens"),
    [
        ({**SIX_WORDS, "stream": False}, 6),  # the mock's usage: words
        ({**SIX_WORDS, "stream": True, **ASK_USAGE}, 6),
        ({**SIX_WORDS, "stream": True}, 7),  # no usage sent: 27 characters / 4, rounded up
    ],
)
async def test_a_served_request_counts_its_tokens(
    body: dict[str, Any], completion_tokens: int
) -> None:
    stage = observe()
    ctx = context(body)
    reply = await stage(ctx, via(mock_provider()))
    assert reply.status == 200
    if reply.is_stream:
        assert [event async for event in relay(reply, ctx)][-1] == b"data: [DONE]\n\n"
    else:
        await reply.close()
    assert requests_counted(stage, "chat", "m", "2xx") == 1
    labels = {"model": "m", "direction": "output"}
    assert (
        stage.metrics.registry.get_sample_value("gateway_tokens_total", labels) == completion_tokens
    )
