"""The Authenticator in-process, on memory state: what each presented key resolves to, and
the per-IP block that refuses failed attempts only."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from gateway.auth.authenticator import Authenticator
from gateway.auth.keys import hash_key
from gateway.auth.principal import ADMIN, ANONYMOUS
from gateway.config.access import AuthConfig, KeyConfig, LimitsConfig
from gateway.errors import AuthenticationFailed, RateLimited
from gateway.observability.metrics import Metrics
from gateway.ratelimit.limiter import Limiter
from gateway.state.memory import MemoryState

GOOD = "sk-unit-good-0123456789"
OLD = "sk-unit-old-0123456789"
ADMIN_KEY = "adm-unit-0123456789"


def authenticator(*, keys: bool = True, failed: list[str] | None = None) -> Authenticator:
    config = AuthConfig(
        keys=[
            KeyConfig(id="good", hash=hash_key(GOOD), may_force_variant=True),
            KeyConfig(id="old", hash=hash_key(OLD), expires_at="2020-01-01T00:00:00Z"),
        ]
        if keys
        else [],
        admin_key=SecretStr(ADMIN_KEY) if keys else None,
    )
    limits = LimitsConfig(failed_auth_ip=failed if failed is not None else [])
    metrics = Metrics()
    limiter = Limiter("memory://", "unit:", metrics)
    return Authenticator.build(config, limits, MemoryState(), limiter, metrics)


@pytest.mark.parametrize(
    ("headers", "key_id"),
    [
        ({"authorization": f"Bearer {GOOD}"}, "good"),
        ({"x-api-key": GOOD}, "good"),
        ({"api-key": GOOD}, "good"),
        ({"authorization": f"Bearer {ADMIN_KEY}"}, ADMIN.key_id),
        ({}, None),
        ({"authorization": "Bearer sk-nope"}, None),
        ({"authorization": f"Bearer {OLD}"}, None),
        ({"authorization": f"Basic {GOOD}"}, None),
    ],
    ids=["bearer", "x-api-key", "api-key", "admin", "missing", "unknown", "expired", "basic"],
)
async def test_a_presented_key_resolves_to_its_principal_or_401(
    headers: dict[str, str], key_id: str | None
) -> None:
    auth = authenticator()
    if key_id is None:
        with pytest.raises(AuthenticationFailed):
            await auth.principal(headers, "10.0.0.1")
        return
    principal = await auth.principal(headers, "10.0.0.1")
    assert principal.key_id == key_id and principal.may_force_variant


async def test_without_keys_every_caller_is_anonymous() -> None:
    assert await authenticator(keys=False).principal({}, "10.0.0.1") is ANONYMOUS


async def test_the_ip_block_refuses_failed_attempts_only() -> None:
    auth = authenticator(failed=["2/minute"])
    bad = {"authorization": "Bearer sk-guess"}
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            await auth.principal(bad, "10.0.0.9")
    for attempt in (auth.principal(bad, "10.0.0.9"), auth.admin(bad, "10.0.0.9")):
        with pytest.raises(RateLimited):
            await attempt
    good = await auth.principal({"x-api-key": GOOD}, "10.0.0.9")
    assert good.key_id == "good"
    await auth.admin({"x-api-key": ADMIN_KEY}, "10.0.0.9")  # the right admin key passes too
    with pytest.raises(AuthenticationFailed):  # another IP is not blocked
        await auth.principal(bad, "10.0.0.10")
