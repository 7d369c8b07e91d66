"""A stream cut before the provider reported usage is billed by what the client received:
text and tool calls alike (issue 10, item 7)."""

from __future__ import annotations

import orjson
import pytest

from tests.hardening import rawserver as raw
from tests.hardening.harness import CHAT, MESSAGES, gateway_before, shared_client

ARGUMENTS = '{"city": "' + "Lisbon " * 80 + '"}'  # 572 characters


def tool_call_events(arguments: str, piece: int = 40) -> list[bytes]:
    """A tool call streamed the way OpenAI does: the name first, then argument pieces."""

    def event(delta: dict) -> bytes:
        chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "raw"}
        chunk["choices"] = [{"index": 0, "delta": delta, "finish_reason": None}]
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    head = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "weather"}}
    events = [event({"role": "assistant", "tool_calls": [{**head}]})]
    for start in range(0, len(arguments), piece):
        part = {"index": 0, "function": {"arguments": arguments[start : start + piece]}}
        events.append(event({"tool_calls": [part]}))
    return events


@pytest.mark.parametrize("then", ["end", "stall"], ids=["upstream-cut", "upstream-stalls"])
def test_cut_stream_with_tool_call_bills_the_arguments_the_client_received(then: str) -> None:
    events = tool_call_events(ARGUMENTS)
    with gateway_before(raw.sse_reply(events, then=then), read=0.5) as (_, gw):
        body = {"model": "up", "messages": MESSAGES, "stream": True}
        response = shared_client().post(gw.url + CHAT, json=body)
        assert response.status_code == 200
        received = response.text
        assert "data: [DONE]" in received and '"error"' in received  # the cut is reported
        billed = gw.metric("gateway_tokens_total", model="up", direction="output")
        expected = -(-(len(ARGUMENTS) + len("weather")) // 4)
        print(f"\ncut tool-call stream: {len(ARGUMENTS)} argument chars, billed {billed:.0f}")
        assert billed >= expected
