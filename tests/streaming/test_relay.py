"""The stream relay in-process, on a fake upstream stream: usage read as it passes, the
usage-only chunk shown only when asked, cut streams estimated (text and tool calls), errors
as an error event then [DONE], and the reply closed exactly once however the stream ends
(tests/hardening/test_cut_stream_billing.py drives real servers)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.context import RequestContext
from gateway.errors import GatewayError, UpstreamUnavailable
from gateway.streaming.relay import chunks, relay, release
from gateway.types import Reply, Usage
from tests.fakes import FakeStream, context

DONE = b"data: [DONE]\n\n"
USAGE = {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}


def text(content: str) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": {"content": content}}]}


def tool(name: str | None, arguments: str) -> dict[str, Any]:
    function = {"arguments": arguments} if name is None else {"name": name, "arguments": arguments}
    call = {"index": 0, "id": "call_1", "type": "function", "function": function}
    return {"choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}


USAGE_ONLY = {"choices": [], "usage": USAGE}
LAST_WITH_USAGE = {**text("!"), "usage": USAGE}  # providers that put usage on the last chunk


class Closes:
    """A reply over a FakeStream, counting its completion callbacks."""

    def __init__(self, *events: dict[str, Any] | bytes | BaseException) -> None:
        self.stream = FakeStream(*events)
        self.reply = Reply(stream=self.stream)
        self.completions = 0
        self.reply.on_complete(self.count)

    async def count(self, _: Reply) -> None:
        self.completions += 1


def streaming(wants_usage: bool = False) -> RequestContext:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "stream": True}
    if wants_usage:
        body["stream_options"] = {"include_usage": True}
    return context(body, prompt_tokens=5)


def decoded(events: list[bytes]) -> list[Any]:
    """The payloads of `data:` events; [DONE] as the string."""
    out = []
    for event in events:
        assert event.startswith(b"data: ") and event.endswith(b"\n\n")
        payload = event[6:-2]
        out.append("[DONE]" if payload == b"[DONE]" else orjson.loads(payload))
    return out


async def relayed(reply: Reply, ctx: RequestContext) -> list[Any]:
    return decoded([event async for event in relay(reply, ctx)])


@pytest.mark.parametrize(
    ("events", "wants_usage", "sent"),
    [
        ([text("a"), USAGE_ONLY], False, [text("a"), "[DONE]"]),
        ([text("a"), USAGE_ONLY], True, [text("a"), USAGE_ONLY, "[DONE]"]),
        ([text("a"), LAST_WITH_USAGE], False, [text("a"), {**text("!"), "usage": None}, "[DONE]"]),
        ([text("a"), LAST_WITH_USAGE], True, [text("a"), LAST_WITH_USAGE, "[DONE]"]),
    ],
)
async def test_usage_is_read_and_shown_only_when_asked(
    events: list[dict[str, Any]], wants_usage: bool, sent: list[Any]
) -> None:
    upstream = Closes(*events)
    assert await relayed(upstream.reply, streaming(wants_usage)) == sent
    assert upstream.reply.usage == Usage(5, 2)
    assert upstream.reply.completed and upstream.reply.error is None


@pytest.mark.parametrize(
    ("events", "completion_tokens"),
    [
        ([text("abcd"), text("efgh"), text("i")], 3),  # 9 characters / 4, rounded up
        ([tool("get_weather", '{"city": '), tool(None, '"Vienna"}')], 8),  # 11 + 9 + 9 = 29
        ([{"choices": [{"index": 0, "text": "legacy completions"}]}], 5),  # 18
        ([{"choices": [{"delta": {"function_call": {"name": "f", "arguments": "{}"}}}]}], 1),
        ([{"choices": [{"delta": {"role": "assistant"}}]}], 0),
        ([], 0),
    ],
)
async def test_a_cut_stream_estimates_what_the_client_received(
    events: list[dict[str, Any]], completion_tokens: int
) -> None:
    upstream = Closes(*events, UpstreamUnavailable("connection reset"))
    sent = await relayed(upstream.reply, streaming())
    assert sent[:-2] == events
    assert upstream.reply.usage == Usage(5, completion_tokens, estimated=True)
    assert not upstream.reply.completed


@pytest.mark.parametrize(
    ("failure", "error_type", "message"),
    [
        (UpstreamUnavailable("connection reset"), "upstream_error", "connection reset"),
        (b"not json", "upstream_error", "The provider sent a malformed stream event."),
        (b"[1, 2]", "upstream_error", "The provider sent a malformed stream event."),
        (RuntimeError("bug"), "api_error", "The gateway failed while relaying the stream."),
    ],
)
async def test_a_failed_stream_ends_with_an_error_event_then_done(
    failure: BaseException | bytes, error_type: str, message: str
) -> None:
    upstream = Closes(text("a"), failure, text("never sent"))
    sent = await relayed(upstream.reply, streaming())
    assert sent[0] == text("a") and sent[-1] == "[DONE]" and len(sent) == 3
    assert (sent[1]["error"]["type"], sent[1]["error"]["message"]) == (error_type, message)
    assert isinstance(upstream.reply.error, GatewayError)
    assert (upstream.stream.closes, upstream.completions) == (1, 1)


async def test_chunks_raises_the_error_that_ended_the_stream() -> None:
    error = UpstreamUnavailable("gone")
    upstream = Closes(text("a"), error)
    received = []
    with pytest.raises(UpstreamUnavailable):
        async for chunk, payload in chunks(upstream.reply, streaming()):
            received.append((chunk, orjson.loads(payload)))
    assert received == [(text("a"), text("a"))]
    assert upstream.reply.error is error


@pytest.mark.parametrize("taken", [0, 1, 2, 3])
async def test_the_reply_is_closed_exactly_once_however_the_stream_ends(taken: int) -> None:
    """`taken` events read before the client leaves (3: the whole stream and [DONE])."""
    upstream = Closes(text("a"), text("b"), USAGE_ONLY)
    ctx = streaming()
    events = relay(upstream.reply, ctx)
    for _ in range(taken):
        await events.__anext__()
    await events.aclose()
    await release(upstream.reply, ctx)  # the HTTP layer's own finally
    assert (upstream.stream.closes, upstream.completions) == (1, 1)
    assert upstream.reply.usage is not None
    assert upstream.reply.usage.estimated is (taken < 3)


async def test_taps_see_every_chunk_and_the_first_byte_is_recorded() -> None:
    upstream = Closes(text("a"), USAGE_ONLY)
    seen: list[dict] = []
    upstream.reply.tap(seen.append)
    ctx = streaming()
    await relayed(upstream.reply, ctx)
    assert seen == [text("a"), USAGE_ONLY]
    assert ctx.first_byte is not None and ctx.first_byte >= ctx.started
