"""The response store: scoped by key, bounded, expiring; written before the last event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
import redis

from gateway.auth.principal import Principal
from gateway.context import RequestContext
from gateway.ingress.responses.render import Draft
from gateway.ingress.responses.reply import ResponsesRenderer, Turn
from gateway.ingress.responses.store import (
    MAX_RECORD_BYTES,
    MemoryResponseStore,
    ResponseStore,
    StateResponseStore,
    StoredResponse,
)
from gateway.state.memory import MemoryState
from gateway.state.redis import RedisState
from gateway.types import Reply
from tests.redis_keys import drop_prefix, unique_prefix


def record(response_id: str, text: str = "x") -> StoredResponse:
    return StoredResponse(
        {"id": response_id, "output": [{"type": "message", "t": text}]},
        [{"type": "message", "id": "msg_1"}],
        [],
    )


@pytest.fixture(params=["memory", "state-memory", "redis"])
def store(request: pytest.FixtureRequest, redis_url: str) -> Iterator[ResponseStore]:
    if request.param == "memory":
        yield MemoryResponseStore()
    elif request.param == "state-memory":
        yield StateResponseStore(MemoryState())
    else:
        redis.Redis.from_url(redis_url).ping()  # fails, never skips, without Redis
        prefix = unique_prefix()
        yield StateResponseStore(RedisState(redis_url, prefix=prefix))
        drop_prefix(redis_url, prefix)


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def test_a_record_is_found_only_by_its_key(store: ResponseStore) -> None:
    async def scenario() -> None:
        assert await store.put("key-a", record("resp_1"))
        found = await store.get("key-a", "resp_1")
        assert found is not None and found.conversation()[-1]["t"] == "x"
        assert await store.get("key-b", "resp_1") is None
        assert not await store.delete("key-b", "resp_1")
        assert await store.delete("key-a", "resp_1")
        assert await store.get("key-a", "resp_1") is None

    run(scenario())


def test_a_record_over_the_bound_is_not_stored(store: ResponseStore) -> None:
    async def scenario() -> None:
        assert not await store.put("key-a", record("resp_big", "y" * MAX_RECORD_BYTES))
        assert await store.get("key-a", "resp_big") is None

    run(scenario())


def test_memory_store_drops_the_oldest_past_its_byte_bound() -> None:
    one = len(record("resp_0").to_bytes())
    store = MemoryResponseStore(max_bytes=3 * one)

    async def scenario() -> None:
        for n in range(5):
            await store.put("k", record(f"resp_{n}"))
        kept = [n for n in range(5) if await store.get("k", f"resp_{n}") is not None]
        assert kept == [2, 3, 4]

    run(scenario())


def test_memory_store_expires() -> None:
    store = MemoryResponseStore(ttl=0.0)

    async def scenario() -> None:
        await store.put("k", record("resp_1"))
        assert await store.get("k", "resp_1") is None

    run(scenario())


async def chat_chunks() -> AsyncIterator[bytes]:
    for text in ("a", "b", "c"):
        yield orjson.dumps({"choices": [{"index": 0, "delta": {"content": text}}]})
    yield orjson.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})


def test_the_response_is_stored_before_the_terminal_event_leaves() -> None:
    store = MemoryResponseStore()
    draft = Draft({"model": "m", "input": "hi"})
    renderer = ResponsesRenderer(Turn(draft, [], [], store))
    ctx = RequestContext("req", "chat", {}, {}, "127.0.0.1")
    ctx.principal = Principal(key_id="key-a")

    async def scenario() -> list[str]:
        seen = []
        async for data in renderer.events(Reply(stream=chat_chunks()), ctx):
            kind = data.split(b"\n", 1)[0].decode().removeprefix("event: ")
            stored = await store.get("key-a", draft.id)
            seen.append(kind)
            if kind == "response.completed":
                assert stored is not None and stored.response["status"] == "completed"
            else:
                assert stored is None
        return seen

    assert run(scenario())[-1] == "response.completed"
