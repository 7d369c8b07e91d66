"""Stored responses: what `previous_response_id`, GET, DELETE and input_items read.

A record is scoped to the key that created it (its id is part of the storage key, so
another key's lookup simply finds nothing: 404), lives `ttl` seconds and is at most
`MAX_RECORD_BYTES` (a larger one is not stored, and the Response says `store: false`).
The record holds the conversation before the response, its input items and the
Response itself: a follow-up rebuilds its history from one read.

Backends: the state backend (Redis: every instance sees it) or, for the memory state, a
bounded in-process map (oldest first out). A PostgreSQL backend implements the same
three methods.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from gateway.state import StateBackend

DEFAULT_TTL_SECONDS = 7 * 86400.0
MAX_RECORD_BYTES = 4 * 1024 * 1024
MEMORY_MAX_BYTES = 256 * 1024 * 1024


@dataclass(slots=True)
class StoredResponse:
    response: dict[str, Any]
    input_items: list[dict[str, Any]]
    history: list[dict[str, Any]]  # the chain's items before this response's input
    encoded: bytes | None = None  # `response` already encoded (the reply's bytes), if it is

    @property
    def id(self) -> str:
        return str(self.response["id"])

    def conversation(self) -> list[dict[str, Any]]:
        """Every item of the chain up to and including this response's output."""
        return [*self.history, *self.input_items, *self.response.get("output", [])]

    def to_bytes(self) -> bytes:
        response = self.encoded if self.encoded is not None else orjson.dumps(self.response)
        return b'{"response":%s,"input_items":%s,"history":%s}' % (
            response,
            orjson.dumps(self.input_items),
            orjson.dumps(self.history),
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> StoredResponse | None:
        try:
            data = orjson.loads(raw)
            return cls(data["response"], data["input_items"], data["history"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return None


class ResponseStore(Protocol):
    async def put(self, key_id: str, record: StoredResponse) -> bool:
        """Store `record` for `key_id`; False when it is over the size bound."""
        ...

    async def get(self, key_id: str, response_id: str) -> StoredResponse | None: ...

    async def delete(self, key_id: str, response_id: str) -> bool:
        """True when the key had such a response."""
        ...


class StateResponseStore:
    """Records in the shared state backend (one key each, expiring with `ttl`)."""

    def __init__(self, state: StateBackend, ttl: float = DEFAULT_TTL_SECONDS) -> None:
        self.state = state
        self.ttl = ttl

    @staticmethod
    def _key(key_id: str, response_id: str) -> str:
        return f"responses:{key_id}:{response_id}"

    async def put(self, key_id: str, record: StoredResponse) -> bool:
        raw = record.to_bytes()
        if len(raw) > MAX_RECORD_BYTES:
            return False
        await self.state.set(self._key(key_id, record.id), raw, self.ttl)
        return True

    async def get(self, key_id: str, response_id: str) -> StoredResponse | None:
        raw = await self.state.get(self._key(key_id, response_id))
        return None if raw is None else StoredResponse.from_bytes(raw)

    async def delete(self, key_id: str, response_id: str) -> bool:
        key = self._key(key_id, response_id)
        if await self.state.get(key) is None:
            return False
        await self.state.delete(key)
        return True


class MemoryResponseStore:
    """Records in this process, bounded in total bytes; the oldest leave first."""

    def __init__(self, ttl: float = DEFAULT_TTL_SECONDS, max_bytes: int = MEMORY_MAX_BYTES) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._records: OrderedDict[tuple[str, str], tuple[bytes, float]] = OrderedDict()
        self._bytes = 0

    async def put(self, key_id: str, record: StoredResponse) -> bool:
        raw = record.to_bytes()
        if len(raw) > MAX_RECORD_BYTES:
            return False
        self._drop((key_id, record.id))
        self._records[(key_id, record.id)] = (raw, time.monotonic() + self.ttl)
        self._bytes += len(raw)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._records)))
        return True

    async def get(self, key_id: str, response_id: str) -> StoredResponse | None:
        found = self._records.get((key_id, response_id))
        if found is None:
            return None
        if found[1] <= time.monotonic():
            self._drop((key_id, response_id))
            return None
        return StoredResponse.from_bytes(found[0])

    async def delete(self, key_id: str, response_id: str) -> bool:
        return self._drop((key_id, response_id))

    def _drop(self, key: tuple[str, str]) -> bool:
        found = self._records.pop(key, None)
        if found is not None:
            self._bytes -= len(found[0])
        return found is not None


def build_response_store(state: StateBackend) -> ResponseStore:
    if state.kind == "memory":
        return MemoryResponseStore()
    return StateResponseStore(state)
