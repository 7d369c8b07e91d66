"""A complete reply's head: the headers encoded as Starlette did, one content-length."""

from __future__ import annotations

from typing import Any

from gateway.context import RequestContext
from gateway.http import reply as reply_module
from gateway.http.reply import ReplyResponse, raw_headers
from gateway.types import Reply


def test_names_are_lower_cased_and_the_memo_stays_bounded() -> None:
    assert raw_headers({"X-RateLimit-Limit-Requests": "10"}) == [
        (b"x-ratelimit-limit-requests", b"10")
    ]
    for i in range(reply_module.NAMES_KEPT * 2):
        raw_headers({f"x-upstream-{i}": "v"})
    assert len(reply_module._encoded_names) <= reply_module.NAMES_KEPT


async def test_a_reply_is_sent_with_its_own_length_and_a_json_type() -> None:
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    reply = Reply(body={"ok": True}, headers={"content-length": "999", "retry-after": "3"})
    ctx = RequestContext(
        request_id="r1", endpoint="chat", body={}, headers={}, client_ip="127.0.0.1"
    )
    ctx.encoded_headers.append((b"x-ratelimit-remaining-requests", b"9"))
    await ReplyResponse(reply, ctx)({"type": "http"}, receive, send)
    start, body = sent
    headers = start["headers"]
    assert [v for n, v in headers if n == b"content-length"] == [str(len(body["body"])).encode()]
    assert (b"content-type", b"application/json") in headers
    assert (b"retry-after", b"3") in headers
    assert (b"x-ratelimit-remaining-requests", b"9") in headers
    assert (b"x-request-id", b"r1") in headers
    assert body["body"] == b'{"ok":true}'
