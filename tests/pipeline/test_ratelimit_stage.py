"""The ratelimit stage in-process, on the memory limiter: requests refused at the boundary
of each scope, token reservations settled to real usage, the x-ratelimit-* headers
(tests/access/test_limits.py drives a real gateway on Redis)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from gateway.auth.principal import Principal
from gateway.config.access import CapsConfig, CapsSection, LimitsConfig
from gateway.errors import GatewayError
from gateway.observability.metrics import Metrics
from gateway.pipeline.ratelimit import RateLimit
from gateway.ratelimit.headers import as_text
from gateway.ratelimit.limiter import Limiter
from gateway.types import Usage
from tests.fakes import USER, Answer, context

# Day windows: a sliding window's count is weighted across a period boundary, which a
# minute window could cross in the middle of a test.
KEY = Principal("k", user="u")


@pytest.fixture
async def limiter() -> AsyncIterator[Limiter]:
    limiter = Limiter("memory://", "test", Metrics())
    yield limiter
    await limiter.aclose()


def stage(limiter: Limiter, caps: CapsSection | None = None, **limits: Any) -> RateLimit:
    return RateLimit(LimitsConfig.model_validate(limits), caps or CapsSection(), limiter)


@pytest.mark.parametrize(
    ("limits", "scope", "remaining"),
    [
        ({"default_key": {"requests": ["3/day"]}}, "key", ["2", "1", "0"]),
        ({"user": {"requests": ["3/day"]}}, "user", ["2", "1", "0"]),
        ({"models": {"m": {"requests": ["3/day"]}}}, "model", ["2", "1", "0"]),
        ({"global": {"requests": ["3/day"]}}, "global", ["2", "1", "0"]),
        # The headers describe the key's windows while it passes; the refusal, the refused one.
        (
            {"default_key": {"requests": ["10/day"]}, "global": {"requests": ["3/day"]}},
            "global",
            ["9", "8", "7"],
        ),
    ],
)
async def test_the_request_past_the_limit_is_refused_with_429(
    limiter: Limiter, limits: dict[str, Any], scope: str, remaining: list[str]
) -> None:
    ratelimit, answer = stage(limiter, **limits), Answer()
    seen = []
    for _ in range(3):
        ctx = context(principal=KEY)
        await ratelimit(ctx, answer)
        seen.append(as_text(ctx.encoded_headers)["x-ratelimit-remaining-requests"])
    assert seen == remaining
    with pytest.raises(GatewayError) as refused:
        await ratelimit(context(principal=KEY), answer)
    err = refused.value
    assert (err.http_status, err.error_type, err.code) == (
        429,
        "rate_limit_error",
        f"rate_limit_exceeded_{scope}",
    )
    assert int(err.headers["retry-after"]) >= 1
    assert err.headers["x-ratelimit-remaining-requests"] == "0"
    assert len(answer.bodies) == 3
    assert limiter.metrics.ratelimit_refusals.labels(scope)._value.get() == 1


async def test_another_key_has_its_own_window(limiter: Limiter) -> None:
    ratelimit = stage(limiter, default_key={"requests": ["1/day"]})
    await ratelimit(context(principal=Principal("a")), Answer())
    await ratelimit(context(principal=Principal("b")), Answer())
    with pytest.raises(GatewayError):
        await ratelimit(context(principal=Principal("a")), Answer())


@pytest.mark.parametrize(
    ("limits", "limit", "remaining"),
    [
        ({"default_key": {"requests": ["5/day"]}, "global": {"requests": ["2/day"]}}, "5", "4"),
        ({"user": {"requests": ["5/day"]}, "global": {"requests": ["2/day"]}}, "2", "1"),
    ],
)
async def test_headers_describe_the_keys_windows_else_the_tightest(
    limiter: Limiter, limits: dict[str, Any], limit: str, remaining: str
) -> None:
    ctx = context(principal=KEY)
    await stage(limiter, **limits)(ctx, Answer())
    headers = as_text(ctx.encoded_headers)
    assert headers["x-ratelimit-limit-requests"] == limit
    assert headers["x-ratelimit-remaining-requests"] == remaining
    assert headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-ratelimit-limit-tokens" not in headers


def chat(**fields: Any) -> dict[str, Any]:
    return {"messages": [USER], **fields}


@pytest.mark.parametrize(
    ("body", "key_caps", "reserved"),
    [
        (chat(max_tokens=100), {}, 110),  # 10 prompt tokens + the bound
        (chat(max_tokens=100, n=2), {}, 210),  # the bound x choices
        (chat(max_tokens=500), {"max_tokens": 50}, 60),  # the capped bound
        (chat(), {}, 10 + 256),  # no bound: limits.default_completion_estimate
        (chat(), {"default_max_tokens": 20}, 30),  # the caps' default
    ],
)
async def test_tokens_reserved_are_prompt_plus_planned_output(
    limiter: Limiter, body: dict[str, Any], key_caps: dict[str, Any], reserved: int
) -> None:
    ratelimit = stage(limiter, default_key={"tokens": ["1000/day"]})
    ctx = context(body, principal=Principal("k", caps=CapsConfig(**key_caps)))
    await ratelimit(ctx, Answer())
    assert as_text(ctx.encoded_headers)["x-ratelimit-remaining-tokens"] == str(1000 - reserved)
    assert as_text(ctx.encoded_headers)["x-ratelimit-limit-tokens"] == "1000"


@pytest.mark.parametrize(
    ("answer", "used"),
    [
        (Answer(Usage(3, 4)), 7),  # settled to the usage the reply reported
        (Answer(Usage(200, 300)), 500),  # more than reserved: charged in full
        (Answer(Usage(0, 0)), 0),
        (Answer(error=RuntimeError("upstream bug")), 0),  # the call failed: all given back
    ],
)
async def test_token_reservation_settles_to_real_usage(
    limiter: Limiter, answer: Answer, used: int
) -> None:
    ratelimit = stage(limiter, default_key={"tokens": ["1000/day"]})
    try:
        reply = await ratelimit(context(chat(max_tokens=100)), answer)
        await reply.close()
    except RuntimeError:
        pass
    ctx = context(chat(max_tokens=100))
    await ratelimit(ctx, Answer())
    assert as_text(ctx.encoded_headers)["x-ratelimit-remaining-tokens"] == str(1000 - used - 110)


@pytest.mark.parametrize(("max_tokens", "fits"), [(90, True), (91, False)])
async def test_a_reservation_that_would_not_fit_is_refused(
    limiter: Limiter, max_tokens: int, fits: bool
) -> None:
    ratelimit, answer = stage(limiter, default_key={"tokens": ["100/day"]}), Answer()
    try:
        await ratelimit(context(chat(max_tokens=max_tokens)), answer)
    except GatewayError as err:
        assert err.code == "rate_limit_exceeded_key"
    assert bool(answer.bodies) is fits


async def test_no_rules_no_headers(limiter: Limiter) -> None:
    ctx = context()
    await stage(limiter)(ctx, Answer())
    assert not ctx.encoded_headers
    assert not any(name.startswith("x-ratelimit") for name in ctx.response_headers)
