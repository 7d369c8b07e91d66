"""The access log's direct writer (`AccessLog`) writes the line `logging` would, redacted
the same way, honours the level, and hands the line to `logging` whenever a handler or a
filter other than the plain JSON stream handler is on the way."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from gateway.context import RequestContext
from gateway.errors import InvalidRequest
from gateway.observability.logging import AccessLog, JSONFormatter
from gateway.observability.metrics import Metrics
from gateway.observability.redaction import MASK, Redactor
from gateway.pipeline import observe
from gateway.types import Reply, Usage

SECRET = "configured-secret-value"
CLEAN = {"request_id": "abc", "model": "bench", "status": 200, "stream": True, "user": None}
FIELDS: dict[str, dict[str, Any]] = {
    "clean": CLEAN,
    "configured secret": {**CLEAN, "model": f"x{SECRET}y"},
    "bearer token": {**CLEAN, "note": "Bearer tok_123456789"},
    "key shape": {**CLEAN, "request_id": "sk-proj-AbCdEf1234567890"},
    "secret field name": {**CLEAN, "Authorization": "Basic abc"},
    "nested": {**CLEAN, "headers": {"x-api-key": "anything"}, "tries": ["a", "b"]},
}


@pytest.fixture
def root_stream() -> Iterator[io.StringIO]:
    """The root logger as `gateway serve` sets it up: one JSON stream handler."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JSONFormatter(Redactor([SECRET])))
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def without_ts(line: str) -> dict[str, Any]:
    entry = orjson.loads(line)
    del entry["ts"]
    return dict(entry)


@pytest.mark.parametrize("fields", FIELDS.values(), ids=FIELDS.keys())
def test_the_direct_line_is_the_line_logging_writes(
    root_stream: io.StringIO, fields: dict[str, Any]
) -> None:
    logger = logging.getLogger("gateway.access")
    logger.info("request", extra=fields)
    AccessLog(logger).info("request", fields)
    by_logging, direct = root_stream.getvalue().splitlines()
    assert without_ts(direct) == without_ts(by_logging)
    assert SECRET not in direct and "tok_123456789" not in direct and "AbCdEf" not in direct
    assert (MASK in direct) is (fields is not CLEAN)


def test_the_level_is_honoured(root_stream: io.StringIO) -> None:
    logging.getLogger().setLevel(logging.WARNING)
    AccessLog(logging.getLogger("gateway.access")).info("request", CLEAN)
    assert root_stream.getvalue() == ""


def test_other_handlers_get_a_real_record(
    root_stream: io.StringIO, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        AccessLog(logging.getLogger("gateway.access")).info("request", CLEAN)
    assert [r.__dict__["model"] for r in caplog.records] == ["bench"]
    assert without_ts(root_stream.getvalue())["model"] == "bench"  # and the stream its line


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


async def test_the_lines_of_one_loop_turn_leave_in_one_write_in_order() -> None:
    counting = CountingStream()
    handler = logging.StreamHandler(counting)
    handler.setFormatter(JSONFormatter(Redactor([SECRET])))
    logger = logging.getLogger("test.access.turns")  # its own handler, as serve sets up
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    access = AccessLog(logger)
    for i in range(5):
        access.info("request", {**CLEAN, "request_id": f"r{i}"})
    assert counting.getvalue() == ""  # kept until the turn ends
    await asyncio.sleep(0)
    lines = counting.getvalue().splitlines()
    assert [orjson.loads(line)["request_id"] for line in lines] == [f"r{i}" for i in range(5)]
    assert counting.writes == 1
    access.info("request", {**CLEAN, "request_id": "next"})
    await asyncio.sleep(0)
    assert counting.writes == 2  # a later turn: its own write
    assert orjson.loads(counting.getvalue().splitlines()[-1])["request_id"] == "next"


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    counting = CountingStream()
    handler = logging.StreamHandler(counting)
    handler.setFormatter(JSONFormatter())
    logger = logging.getLogger("test.access.sync")
    logger.handlers[:], logger.propagate = [handler], False
    logger.setLevel(logging.INFO)
    AccessLog(logger).info("request", CLEAN)
    assert orjson.loads(counting.getvalue())["request_id"] == "abc"


def test_the_request_line_vouches_for_every_string_it_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Observe.record hands the formatter its line's strings to check for secrets (the
    other fields are not looked at): every string of the line must be among them."""
    calls: list[tuple[dict[str, Any], Any]] = []

    def info(message: str, fields: dict[str, Any], texts: Any = None, extra: Any = None) -> None:
        calls.append((fields, texts))

    monkeypatch.setattr(observe.requests_log, "info", info)
    stage = observe.Observe(Metrics(), access_log=True, log_prompts=True)
    body = {"model": "m", "messages": [{"role": "user", "content": "hi there"}]}
    ctx = RequestContext(
        request_id="r1", endpoint="chat", body=body, headers={}, client_ip="10.0.0.1"
    )
    ctx.alias, ctx.deployment = "m", "provider/m"
    for reply in (
        Reply(body={"choices": [{"message": {"content": "hello"}}]}, usage=Usage(3, 4)),
        observe.error_reply(InvalidRequest("bad field", param="messages")),
    ):
        stage.record(ctx, reply, 0.1, [])
    assert len(calls) == 2
    for fields, texts in calls:
        strings = [value for value in fields.values() if isinstance(value, str)]
        assert strings and set(strings) <= set(texts)
        others = [value for value in fields.values() if not isinstance(value, str)]
        assert all(value is None or type(value) in (int, float, bool) for value in others)
