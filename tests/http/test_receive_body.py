"""receive_body: the whole body from ASGI messages, bounded, a client gone mid-way told."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.errors import BodyTooLarge, ClientDisconnected, InvalidRequest
from gateway.http.request import receive_body


def messages(*items: dict[str, Any]) -> Any:
    queue = list(items)

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    return receive


def part(body: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.request", "body": body, "more_body": more}


async def test_the_parts_are_joined_in_order() -> None:
    receive = messages(part(b'{"a":'), part(b""), part(b"1}", more=False))
    assert await receive_body(receive, {}, 100) == b'{"a":1}'


async def test_a_client_gone_mid_body_is_a_disconnect() -> None:
    receive = messages(part(b'{"a":'), {"type": "http.disconnect"})
    with pytest.raises(ClientDisconnected):
        await receive_body(receive, {}, 100)


async def test_past_the_limit_while_arriving_is_413() -> None:
    receive = messages(part(b"x" * 60), part(b"x" * 60, more=False))
    with pytest.raises(BodyTooLarge):
        await receive_body(receive, {}, 100)


@pytest.mark.parametrize(
    ("length", "error"), [("abc", InvalidRequest), ("-1", InvalidRequest), ("101", BodyTooLarge)]
)
async def test_a_declared_length_is_checked_before_reading(
    length: str, error: type[Exception]
) -> None:
    async def receive() -> dict[str, Any]:
        raise AssertionError("read before the length was checked")

    with pytest.raises(error):
        await receive_body(receive, {"content-length": length}, 100)
