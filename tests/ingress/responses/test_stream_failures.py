"""Streams that break: after the first byte a failure is a `response.failed` event (and
nothing is stored); before it, an error body; a client that leaves frees the upstream."""

from __future__ import annotations

import time

import httpx
import orjson

from tests.servers import RunningServer
from tests.upstream import FakeUpstream

BODY = {"model": "gpt-test", "input": "hi", "stream": True}


def events(gateway: RunningServer) -> list[dict]:
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=BODY) as answer:
        assert answer.status_code == 200
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
    return [orjson.loads(line[6:]) for line in lines]


def test_a_stream_cut_mid_way_ends_with_response_failed(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    upstream.reset(chunks=5, cut_after=2)
    sent = events(gateway)
    assert sent[0]["type"] == "response.created"
    assert sent[-1]["type"] == "response.failed"
    assert sent[-1]["response"]["id"] == sent[0]["response"]["id"]
    assert sent[-1]["response"]["error"]["message"]
    stored = httpx.get(f"{gateway.url}/v1/responses/{sent[0]['response']['id']}")
    assert stored.status_code == 404


def test_an_upstream_error_before_the_stream_is_an_error_body(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    upstream.reset(status=400, error_message="bad things")
    answer = httpx.post(f"{gateway.url}/v1/responses", json=BODY)
    assert answer.status_code == 400
    assert "bad things" in answer.json()["error"]["message"]


def test_every_event_has_an_event_line_matching_its_type(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=BODY) as answer:
        blocks = answer.read().decode().strip().split("\n\n")
    for block in blocks:
        event_line, data_line = block.split("\n")
        assert event_line.removeprefix("event: ") == orjson.loads(data_line[6:])["type"]


def test_a_client_that_leaves_frees_the_upstream(
    gateway: RunningServer, upstream: FakeUpstream
) -> None:
    upstream.reset(chunks=200, chunk_delay=0.05)
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=BODY) as answer:
        for line in answer.iter_lines():
            if "output_text.delta" in line:
                break
    left = time.monotonic()
    while not upstream.stream_closed_at and time.monotonic() < left + 5:
        time.sleep(0.02)
    assert upstream.stream_closed_at  # long before the 10 s the stream would have run
