"""Experiment feedback that clients cannot forge or inflate (issue 10, item 6), through the
real server on memory and Redis state: links are scoped by the key that made the request,
one feedback per request counts (the last wins), scores are finite and bounded, and the
report answers whatever the store holds."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from gateway.experiments.store import ExperimentStore
from tests.redis_keys import drop_prefix, unique_prefix
from tests.servers import RunningServer

KEY_A = os.environ.setdefault("FB_KEY_A", "sk-feedback-a-0123456789")
KEY_B = os.environ.setdefault("FB_KEY_B", "sk-feedback-b-0123456789")
ADMIN = os.environ.setdefault("FB_ADMIN_KEY", "adm-feedback-0123456789")
CONFIG = """
{state}
providers:
  mock: {{kind: mock}}
models:
  fast: {{deployments: [{{provider: mock, model: fast-1}}]}}
  smart: {{deployments: [{{provider: mock, model: smart-1}}]}}
experiments:
  tone:
    applies_to: fast
    variants:
      control: {{target: fast}}
      brief: {{target: smart}}
auth:
  admin_key: ${{FB_ADMIN_KEY}}
  keys:
    - {{id: a, api_key: "${{FB_KEY_A}}", may_force_variant: true}}
    - {{id: b, api_key: "${{FB_KEY_B}}", may_force_variant: true}}
limits: {{failed_auth_ip: []}}
"""


@pytest.fixture(params=["memory", "redis"])
def gateway(
    request: pytest.FixtureRequest, start_gateway: Callable[[str], RunningServer], redis_url: str
) -> Iterator[RunningServer]:
    state = ""
    prefix = unique_prefix()
    if request.param == "redis":
        redis.Redis.from_url(redis_url).ping()  # fails (not skips) without Redis
        state = f"state: {{backend: redis, redis_url: '{redis_url}', key_prefix: '{prefix}'}}"
    yield start_gateway(CONFIG.format(state=state))
    if request.param == "redis":
        drop_prefix(redis_url, prefix)


def chat(gateway: RunningServer, key: str, variant: str, request_id: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "x-gateway-variant": variant}
    headers["x-request-id"] = request_id
    body = {"model": "fast", "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/chat/completions", json=body, headers=headers)


def feedback(gateway: RunningServer, key: str, body: dict[str, Any] | bytes) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    if isinstance(body, bytes):
        return httpx.post(f"{gateway.url}/v1/feedback", content=body, headers=headers)
    return httpx.post(f"{gateway.url}/v1/feedback", json=body, headers=headers)


def report(gateway: RunningServer) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN}"}
    return httpx.get(f"{gateway.url}/admin/experiments/tone", headers=headers)


def variants(gateway: RunningServer) -> dict[str, dict[str, Any]]:
    return {v["variant"]: v for v in report(gateway).json()["variants"]}


def test_a_reused_request_id_cannot_take_over_another_keys_feedback(
    gateway: RunningServer,
) -> None:
    assert chat(gateway, KEY_A, "brief", "shared-id").status_code == 200
    assert feedback(gateway, KEY_B, {"request_id": "shared-id", "score": 1}).status_code == 404
    assert chat(gateway, KEY_B, "control", "shared-id").status_code == 200  # same id, B's own
    mine = feedback(gateway, KEY_A, {"request_id": "shared-id", "outcome": "accepted"})
    theirs = feedback(gateway, KEY_B, {"request_id": "shared-id", "outcome": "rejected"})
    assert (mine.status_code, mine.json()["variant"]) == (200, "brief")
    assert (theirs.status_code, theirs.json()["variant"]) == (200, "control")
    counted = variants(gateway)
    assert counted["brief"]["feedback"] == {"accepted": 1, "rejected": 0, "corrected": 0}
    assert counted["control"]["feedback"] == {"accepted": 0, "rejected": 1, "corrected": 0}


def test_one_feedback_per_request_the_last_one_wins(gateway: RunningServer) -> None:
    assert chat(gateway, KEY_A, "brief", "once").status_code == 200
    for _ in range(5):
        body = {"request_id": "once", "outcome": "accepted", "score": 1e6}
        assert feedback(gateway, KEY_A, body).status_code == 200
    last = {"request_id": "once", "outcome": "rejected", "score": -2}
    assert feedback(gateway, KEY_A, last).status_code == 200
    brief = variants(gateway)["brief"]
    assert brief["feedback"] == {"accepted": 0, "rejected": 1, "corrected": 0}
    assert brief["mean_score"] == -2


def test_concurrent_feedbacks_on_one_request_count_once(gateway: RunningServer) -> None:
    assert chat(gateway, KEY_A, "control", "racy").status_code == 200
    bodies = [{"request_id": "racy", "outcome": "accepted", "score": i} for i in range(40)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda b: feedback(gateway, KEY_A, b).status_code, bodies))
    assert set(statuses) == {200}
    control = variants(gateway)["control"]
    assert control["feedback"]["accepted"] == 1
    assert control["mean_score"] in {float(i) for i in range(40)}  # one of them, whole


@pytest.mark.parametrize(
    ("score", "status"),
    [
        (1e308, 400),
        (-1e308, 400),
        (1_000_001, 400),
        (True, 400),
        ("1", 400),
        (b"1e999", 400),  # JSON that parses to infinity
        (1e6, 200),
        (-1e6, 200),
        (0.5, 200),
    ],
)
def test_scores_are_finite_and_bounded(
    gateway: RunningServer, score: float | bool | str | bytes, status: int
) -> None:
    assert chat(gateway, KEY_A, "brief", "scored").status_code == 200
    if isinstance(score, bytes):
        body: dict[str, Any] | bytes = b'{"request_id": "scored", "score": ' + score + b"}"
    else:
        body = {"request_id": "scored", "score": score}
    answer = feedback(gateway, KEY_A, body)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert answer.json()["error"]["param"] in {"score", None}
    assert report(gateway).status_code == 200


@pytest.mark.parametrize("stored", [float("inf"), float("-inf"), float("nan"), 1e300, -5.0])
def test_the_report_answers_whatever_the_store_holds(gateway: RunningServer, stored: float) -> None:
    runtime = gateway.server.config.app.state.runtime  # type: ignore[attr-defined]
    store = ExperimentStore(runtime.services.state)
    fields = ["requests", "feedback", "fb_accepted", "score_sum", "score_count", "lat_3", "cost"]
    corrupt = {name: stored for name in fields}
    if runtime.services.state.kind == "redis":  # Redis refuses to add inf/nan: write them raw
        client = redis.Redis.from_url(runtime.services.state.url)
        client.hset(runtime.services.state.prefix + "exp:tone:brief", mapping=corrupt)
        client.hset(runtime.services.state.prefix + "exp:tone:control", "requests", "garbage")
    else:
        asyncio.run(store.state.hincr_many({"exp:tone:brief": corrupt}))  # plain dicts
    answer = report(gateway)
    assert answer.status_code == 200, answer.text
    for variant in answer.json()["variants"]:
        assert variant["requests"] >= 0 and 0 <= variant["error_rate"] <= 1
        assert variant["mean_score"] is None or abs(variant["mean_score"]) < 1e300


def test_an_oversized_feedback_body_is_refused_before_it_is_read(gateway: RunningServer) -> None:
    body = b'{"request_id": "x", "outcome": "accepted", "pad": "' + b"a" * 100_000 + b'"}'
    answer = feedback(gateway, KEY_A, body)
    assert answer.status_code == 413
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_a_request_id_used_again_moves_its_feedback_without_negative_counts(
    gateway: RunningServer,
) -> None:
    assert chat(gateway, KEY_A, "brief", "again").status_code == 200
    assert feedback(gateway, KEY_A, {"request_id": "again", "outcome": "accepted"}).is_success
    assert chat(gateway, KEY_A, "control", "again").status_code == 200  # same id, other variant
    assert feedback(gateway, KEY_A, {"request_id": "again", "outcome": "rejected"}).is_success
    counted = variants(gateway)
    assert counted["brief"]["feedback"] == {"accepted": 0, "rejected": 0, "corrected": 0}
    assert counted["control"]["feedback"] == {"accepted": 0, "rejected": 1, "corrected": 0}
