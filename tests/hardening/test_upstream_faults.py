"""Every way an upstream fails ends in its documented status, within the deadline, with
no connection left open: real local servers, a real gateway, raw httpx clients."""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import orjson
import pytest

from tests.hardening import rawserver as raw
from tests.hardening.harness import (
    CHAT,
    MESSAGES,
    assert_openai_error,
    busy_upstream_connections,
    gateway_before,
    gateway_yaml,
    running_gateway,
    sse_lines,
    still_serves,
    wait_until,
)

READ_TIMEOUT = 0.5
DEADLINE = READ_TIMEOUT + 1.5  # the gateway's own work is a few ms; the rest is slack
ERROR = orjson.dumps({"error": {"message": "boom", "type": "server_error"}})
BAD_USAGE = orjson.dumps(
    {"id": "x", "object": "chat.completion", "choices": [], "usage": {"prompt_tokens": "many"}}
)

# scenario, expected status, expected error type, a word the message must contain
COMPLETE_FAULTS = [
    pytest.param(raw.stall_before_headers(), 504, "timeout", "timed out", id="hang-past-timeout"),
    pytest.param(raw.json_reply(ERROR, 500), 502, "upstream_error", "boom", id="http-500"),
    pytest.param(raw.json_reply(ERROR, 503), 502, "upstream_error", "boom", id="http-503"),
    pytest.param(raw.json_reply(b"{not json"), 502, "upstream_error", "malformed", id="bad-json"),
    pytest.param(raw.json_reply(b"[1, 2]"), 502, "upstream_error", "not an object", id="json-list"),
    pytest.param(raw.json_reply(b"<html>oops"), 502, "upstream_error", "malformed", id="html"),
    pytest.param(raw.json_reply(b"", 502), 502, "upstream_error", "502", id="empty-502"),
    pytest.param(
        raw.json_reply(b"<html>bad gateway</html>", 500), 502, "upstream_error", "", id="html-500"
    ),
]


@pytest.mark.parametrize(("scenario", "status", "error_type", "word"), COMPLETE_FAULTS)
def test_upstream_fault_gives_documented_status_in_time_without_leak(
    scenario: raw.Scenario, status: int, error_type: str, word: str
) -> None:
    with raw.raw_upstream(scenario) as upstream, running_gateway(gateway_yaml(upstream.url)) as gw:
        started = time.monotonic()
        response = httpx.post(gw.url + CHAT, json={"model": "up", "messages": MESSAGES}, timeout=10)
        elapsed = time.monotonic() - started
        error = assert_openai_error(response, status)
        assert error["type"] == error_type
        assert word in error["message"]
        assert elapsed < DEADLINE, elapsed
        assert upstream.wait_for_connections(0, timeout=1.0) == 0
        assert busy_upstream_connections(gw) == 0
        still_serves(gw.url)
        print(f" {response.status_code} in {elapsed * 1000:.0f} ms", end="")


def test_upstream_reply_with_malformed_usage_is_passed_through_not_a_500() -> None:
    with gateway_before(raw.json_reply(BAD_USAGE)) as (_, gw):
        response = httpx.post(gw.url + CHAT, json={"model": "up", "messages": MESSAGES})
        assert response.status_code == 200, response.text
        assert response.json()["usage"] == {"prompt_tokens": "many"}


def test_connection_refused_is_502_at_once() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with running_gateway(gateway_yaml(f"http://127.0.0.1:{port}")) as gw:
        for stream in (False, True):
            started = time.monotonic()
            body = {"model": "up", "messages": MESSAGES, "stream": stream}
            response = httpx.post(gw.url + CHAT, json=body)
            error = assert_openai_error(response, 502)
            assert "could not be reached" in error["message"]
            assert time.monotonic() - started < 2.0  # no wait for any timeout (connect: 0.5 s)
        assert busy_upstream_connections(gw) == 0


def test_429_storm_passes_each_429_with_its_message_and_leaks_nothing() -> None:
    scenario = raw.json_reply(
        orjson.dumps({"error": {"message": "slow down"}}), 429, retry_after="7"
    )
    # The gateway, the upstream and the clients share one process: 100 requests at once
    # can outlast the harness's 0.5 s connect and read timeouts on a busy machine (a CI run
    # read a 504), and the subject here is the 429s, not how fast they come back.
    with raw.raw_upstream(scenario) as upstream:
        config = gateway_yaml(upstream.url, connect=5.0, read=5.0)
        with running_gateway(config) as gw:

            async def storm() -> list[httpx.Response]:
                async with httpx.AsyncClient(timeout=10) as client:
                    body = {"model": "up", "messages": MESSAGES}
                    calls = [client.post(gw.url + CHAT, json=body) for _ in range(100)]
                    return await asyncio.gather(*calls)

            started = time.monotonic()
            responses = asyncio.run(storm())
            elapsed = time.monotonic() - started
            for response in responses:
                assert assert_openai_error(response, 429)["message"].endswith("slow down")
            assert elapsed < 10, elapsed
            print(f" 100 x 429 in {elapsed * 1000:.0f} ms", end="")
            assert upstream.wait_for_connections(0, timeout=1.0) == 0
            assert busy_upstream_connections(gw) == 0
            still_serves(gw.url)


def test_a_429_tells_the_client_when_to_retry() -> None:
    scenario = raw.json_reply(
        orjson.dumps({"error": {"message": "slow down"}}), 429, retry_after="7"
    )
    with gateway_before(scenario) as (_, gw):
        response = httpx.post(gw.url + CHAT, json={"model": "up", "messages": MESSAGES})
        assert response.status_code == 429
        assert response.headers.get("retry-after") == "7"


def _events(n: int) -> list[bytes]:
    return [raw.sse_chunk(i) for i in range(n)]


# scenario, a word the error event's message must contain
STREAM_FAULTS = [
    pytest.param(raw.sse_reply([b"data: {not json\n\n"]), "malformed", id="event-not-json"),
    pytest.param(raw.sse_reply([*_events(2), b"data: [1, 2]\n\n"]), "malformed", id="event-list"),
    pytest.param(raw.sse_reply([*_events(2), b'data: "text"\n\n']), "malformed", id="event-str"),
    pytest.param(raw.sse_reply(_events(3), then="end"), "ended before", id="end-without-done"),
    pytest.param(raw.sse_reply(_events(3), then="close"), "could not be reached", id="cut"),
    pytest.param(raw.sse_reply(_events(3), then="truncate"), "could not be reached", id="trunc"),
    pytest.param(raw.sse_reply(_events(3), then="stall"), "timed out", id="stall-mid-stream"),
    pytest.param(
        raw.sse_reply([raw.sse_chunk(0), b'data: {"error": {"message": "overloaded"}}\n\n']),
        "overloaded",
        id="error-event",
    ),
]


@pytest.mark.parametrize(("scenario", "word"), STREAM_FAULTS)
def test_stream_fault_ends_with_error_event_and_done_in_time_without_leak(
    scenario: raw.Scenario, word: str
) -> None:
    with raw.raw_upstream(scenario) as upstream, running_gateway(gateway_yaml(upstream.url)) as gw:
        body = {"model": "up", "messages": MESSAGES, "stream": True}
        started = time.monotonic()
        with httpx.stream("POST", gw.url + CHAT, json=body, timeout=10) as response:
            assert response.status_code == 200
            lines = sse_lines(response)
        elapsed = time.monotonic() - started
        assert lines[-1] == "data: [DONE]"
        error = orjson.loads(lines[-2].removeprefix("data: "))["error"]
        assert word in error["message"], error
        assert set(error) == {"message", "type", "param", "code"}
        assert elapsed < DEADLINE, elapsed
        assert upstream.wait_for_connections(0, timeout=1.0) == 0
        assert wait_until(lambda: busy_upstream_connections(gw) == 0)
        still_serves(gw.url)
        print(f" error event + [DONE] in {elapsed * 1000:.0f} ms", end="")


def test_stream_with_unreadable_usage_is_relayed_and_tokens_estimated() -> None:
    bad_usage = b'data: {"choices": [], "usage": {"prompt_tokens": "x"}}\n\n'
    with gateway_before(raw.sse_reply([*_events(3), bad_usage])) as (_, gw):
        body = {"model": "up", "messages": MESSAGES, "stream": True}
        with httpx.stream("POST", gw.url + CHAT, json=body) as response:
            lines = sse_lines(response)
        assert lines[-1] == "data: [DONE]"
        assert len(lines) == 4 and all('"error"' not in line for line in lines)
        assert wait_until(lambda: gw.metric("gateway_tokens_total", direction="output") > 0)


def test_stream_upstream_status_error_is_a_json_error_not_sse() -> None:
    with gateway_before(raw.json_reply(ERROR, 500)) as (_, gw):
        body = {"model": "up", "messages": MESSAGES, "stream": True}
        assert_openai_error(httpx.post(gw.url + CHAT, json=body), 502)
        assert busy_upstream_connections(gw) == 0


def test_all_upstream_connections_close_when_the_gateway_stops() -> None:
    events = raw.sse_reply(_events(2), then="stall")
    with gateway_before(events, read=30) as (upstream, gw):

        async def start_streams() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                body = {"model": "up", "messages": MESSAGES, "stream": True}
                for _ in range(5):
                    async with client.stream("POST", gw.url + CHAT, json=body) as response:
                        async for line in response.aiter_lines():
                            if line.startswith("data:"):
                                break  # leave while the upstream is stalled

        asyncio.run(start_streams())
        # the gateway is stopped: its pool is closed, whatever was left
        assert upstream.wait_for_connections(0, timeout=2.0) == 0
