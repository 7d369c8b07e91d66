"""API keys: hashing, the keys written in YAML, and the keys created at run time.

Only hashes are kept (`sha256:<hex>`): YAML holds hashes or ${ENV} references, the state
backend holds hashes of admin-created keys. Dynamic keys live in the state backend so that
every instance sees a new or revoked key within `auth.key_cache_seconds`; each instance
keeps a short-lived copy so a known key costs no round trip on most requests.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.auth.principal import Principal
from gateway.config.access import AuthConfig, KeyConfig, KeyPolicy
from gateway.state import StateBackend

KEY_PREFIX = "sk-gw-"
BY_HASH = "auth:keys"  # field: hex digest -> the key's record (JSON)
BY_ID = "auth:key_ids"  # field: key id -> hex digest
CACHE_LIMIT = 10_000  # entries; cleared when full (random keys must not grow it without end)


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def hash_key(key: str) -> str:
    return "sha256:" + digest(key)


def principal_for(key_id: str, policy: KeyPolicy) -> Principal:
    return Principal(
        key_id=key_id,
        user=policy.user,
        team=policy.team,
        metadata=dict(policy.metadata),
        allowed_models=None if policy.models is None else frozenset(policy.models),
        expires_at=policy.expires_at,
        trusted_user=policy.trusted_user,
        may_force_variant=policy.may_force_variant,
        limits=policy.limits,
        caps=policy.caps,
        budget=policy.budget,
    )


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A key as the admin API shows it: never the key, never its hash."""

    id: str
    policy: KeyPolicy
    source: str  # "config" or "admin"
    created_at: str | None = None

    def public(self) -> dict[str, Any]:
        view = {"id": self.id, "source": self.source, "created_at": self.created_at}
        return {**view, **self.policy.model_dump(mode="json", exclude_none=True)}


class KeyStore:
    def __init__(self, config: AuthConfig, state: StateBackend) -> None:
        self.config = config
        self.state = state
        self.ttl = config.key_cache_seconds
        self.static: dict[str, tuple[str, Principal]] = {}
        self.static_records: dict[str, KeyRecord] = {}
        for key in config.keys:
            hexdigest = _config_digest(key)
            self.static[hexdigest] = (hexdigest, principal_for(key.id, key))
            self.static_records[key.id] = KeyRecord(key.id, _policy_of(key), "config")
        self._cache: dict[str, tuple[Principal | None, float]] = {}

    def known(self, presented: str) -> Principal | None:
        """The principal of a presented key when this process knows it without asking the
        state: a YAML key, or one looked up within `key_cache_seconds`. None otherwise
        (unknown, revoked, or not looked up lately: `lookup` decides)."""
        hexdigest = digest(presented)
        principal = self._configured(hexdigest)
        if principal is None:
            cached = self._cache.get(hexdigest)
            if cached is not None and self._fresh(cached, time.monotonic()):
                principal = cached[0]
        return principal

    async def lookup(self, presented: str) -> Principal | None:
        """The principal of a presented key, or None when the key is unknown or revoked."""
        hexdigest = digest(presented)
        principal = self._configured(hexdigest)
        if principal is not None:
            return principal
        cached = self._cache.get(hexdigest)
        now = time.monotonic()
        if cached is not None and self._fresh(cached, now):
            return cached[0]
        try:
            raw = await self.state.hget(BY_HASH, hexdigest)
        except Exception:
            if cached is not None:  # state unreachable: the last known answer beats none
                return cached[0]
            raise
        principal = _principal_from_record(raw, hexdigest)
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        self._cache[hexdigest] = (principal, now)
        return principal

    def _configured(self, hexdigest: str) -> Principal | None:
        """The YAML key with this digest, if one."""
        found = self.static.get(hexdigest)
        if found is not None and hmac.compare_digest(found[0], hexdigest):
            return found[1]
        return None

    def _fresh(self, cached: tuple[Principal | None, float], now: float) -> bool:
        """Whether a remembered answer is younger than `key_cache_seconds`."""
        return now - cached[1] < self.ttl

    async def create(self, key_id: str | None, policy: KeyPolicy) -> tuple[str, KeyRecord]:
        """Store a new key; return the key itself (shown once) and its record."""
        key_id = key_id or "key-" + secrets.token_hex(6)
        if key_id in self.static_records or await self.state.hget(BY_ID, key_id) is not None:
            raise KeyExists(key_id)
        key = new_key()
        hexdigest = digest(key)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        record = {
            "id": key_id,
            "hash": "sha256:" + hexdigest,
            "created_at": created,
            "policy": policy.model_dump(mode="json"),
        }
        await self.state.hset(BY_HASH, hexdigest, orjson.dumps(record))
        await self.state.hset(BY_ID, key_id, hexdigest.encode())
        return key, KeyRecord(key_id, policy, "admin", created)

    async def revoke(self, key_id: str) -> bool:
        hexdigest = await self.state.hget(BY_ID, key_id)
        if hexdigest is None:
            return False
        await self.state.hdel(BY_HASH, hexdigest.decode())
        await self.state.hdel(BY_ID, key_id)
        self._cache.pop(hexdigest.decode(), None)  # this instance forgets it at once
        return True

    async def records(self) -> list[KeyRecord]:
        dynamic = [_record(raw) for raw in (await self.state.hvalues(BY_HASH)).values()]
        return [*self.static_records.values(), *sorted(dynamic, key=lambda r: r.id)]

    async def record(self, key_id: str) -> KeyRecord | None:
        if key_id in self.static_records:
            return self.static_records[key_id]
        hexdigest = await self.state.hget(BY_ID, key_id)
        if hexdigest is None:
            return None
        raw = await self.state.hget(BY_HASH, hexdigest.decode())
        return None if raw is None else _record(raw)


class KeyExists(Exception):
    pass


def _config_digest(key: KeyConfig) -> str:
    if key.api_key is not None:
        return digest(key.api_key.get_secret_value())
    assert key.hash is not None
    return key.hash.removeprefix("sha256:")


def _policy_of(key: KeyConfig) -> KeyPolicy:
    fields = {name: getattr(key, name) for name in KeyPolicy.model_fields}
    return KeyPolicy(**fields)


def _record(raw: bytes) -> KeyRecord:
    data = orjson.loads(raw)
    policy = KeyPolicy.model_validate(data["policy"])
    return KeyRecord(data["id"], policy, "admin", data.get("created_at"))


def _principal_from_record(raw: bytes | None, hexdigest: str) -> Principal | None:
    if raw is None:
        return None
    data = orjson.loads(raw)
    if not hmac.compare_digest(str(data.get("hash", "")), "sha256:" + hexdigest):
        return None
    return principal_for(data["id"], KeyPolicy.model_validate(data["policy"]))
