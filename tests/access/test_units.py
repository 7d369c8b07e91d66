"""Token counting, key hashing and the state-backend operations keys and budgets use."""

from __future__ import annotations

import pytest

from gateway.accounting.budgets import spend_key
from gateway.accounting.tokens import CharEstimate, count_prompt_tokens, count_text, encoder
from gateway.auth.keys import KEY_PREFIX, hash_key, new_key
from gateway.config.schema import StateConfig
from gateway.state import build_state
from gateway.state.backend import Hold, MissingMark


@pytest.mark.parametrize(
    ("body", "endpoint", "expected"),
    [
        ({"messages": [{"role": "user", "content": "hello world"}]}, "chat", 3 + 3 + 1 + 2),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}]},
            "chat",
            3 + 3 + 1 + 2,
        ),
        ({"prompt": "hello world"}, "completions", 2),
        ({"input": ["hello", "world"]}, "embeddings", 2),
        ({"messages": []}, "chat", 3),
    ],
    ids=["chat-string", "chat-parts", "completions", "embeddings-list", "no-messages"],
)
def test_prompt_token_counts(body: dict, endpoint: str, expected: int) -> None:
    assert count_prompt_tokens(body, endpoint) == expected


def test_bundled_tokenizer_is_used_not_the_estimate() -> None:
    assert not isinstance(encoder(), CharEstimate)
    assert count_text("tokenization") < len("tokenization") / 2


def test_char_estimate_rounds_up() -> None:
    assert len(CharEstimate().encode_ordinary("abcde")) == 2


def test_keys_are_random_and_hashed() -> None:
    one, two = new_key(), new_key()
    assert one != two and one.startswith(KEY_PREFIX) and len(one) > 40
    assert hash_key(one).startswith("sha256:") and len(hash_key(one)) == 7 + 64


@pytest.fixture(params=["memory", "redis"])
async def state(request: pytest.FixtureRequest, redis_url: str, prefix: str):  # type: ignore[no-untyped-def]
    # Exact counts per call: without leases (tests/access/test_leases.py has those).
    config = StateConfig(
        backend=request.param, redis_url=redis_url, key_prefix=prefix, lease_fraction=0
    )
    backend = build_state(config)
    yield backend
    await backend.aclose()


async def test_state_hashes_for_keys_and_budgets(state) -> None:  # type: ignore[no-untyped-def]
    await state.hset("h", "a", b"one")
    assert await state.hget("h", "a") == b"one"
    assert await state.hvalues("h") == {"a": b"one"}
    await state.hdel("h", "a")
    assert await state.hget("h", "a") is None

    day, month = spend_key("key", "k", "day", "d"), spend_key("key", "k", "month", "m")
    await state.hincr_many({day: {"tokens": 5, "usd": 0.5}, month: {"tokens": 5}}, ttl=60)
    await state.hincr_many({day: {"tokens": 2}}, ttl=60)
    assert await state.hgetall_many([day, month, "missing"]) == [
        {"tokens": 7.0, "usd": 0.5},
        {"tokens": 5.0},
        {},
    ]


async def test_reservations_are_all_or_none_and_count_what_is_held(state) -> None:  # type: ignore[no-untyped-def]
    key, team = spend_key("key", "k", "day", "d"), spend_key("team", "t", "day", "d")
    await state.hincr_many({key: {"usd": 0.5}}, ttl=60)
    hold = [Hold(key, {"usd": 0.3, "tokens": 10}, {"usd": 1.0}), Hold(team, {"usd": 0.3}, {})]
    assert await state.reserve(hold, ttl=60) is None  # 0.5 spent + 0.3 held <= 1
    assert await state.reserve(hold, ttl=60) == 0  # 0.5 + 0.3 held + 0.3 > 1: nothing taken
    too_big_for_team = [Hold(key, {"usd": 0.1}, {"usd": 1.0}), Hold(team, {"usd": 1}, {"usd": 1})]
    assert await state.reserve(too_big_for_team, ttl=60) == 1
    counts = await state.hgetall_many([key, team])
    assert counts == [
        {"usd": 0.5, "reserved_usd": pytest.approx(0.3), "reserved_tokens": 10.0},
        {"reserved_usd": pytest.approx(0.3)},
    ]
    await state.debit({key: {"usd": 0.2, "reserved_usd": -0.3, "reserved_tokens": -10}}, ttl=60)
    assert await state.reserve(hold, ttl=60) is None  # 0.7 spent + 0.3 fits exactly


async def test_a_hold_that_requires_a_mark_reserves_nothing_on_a_hash_without_it(state) -> None:  # type: ignore[no-untyped-def]
    """The ledger's `seeded` mark (gateway/db/spend.py): a hash Redis lost is not reserved
    on, and the answer names it, so the caller rebuilds its totals and asks again."""
    seeded, lost = spend_key("key", "k", "day", "d"), spend_key("team", "t", "day", "d")
    await state.hincr_many({seeded: {"seeded": 1.0, "usd": 0.5}}, ttl=60)
    holds = [
        Hold(seeded, {"usd": 0.1}, {"usd": 1.0}, requires="seeded"),
        Hold(lost, {"usd": 0.1}, {"usd": 1.0}, requires="seeded"),
    ]
    with pytest.raises(MissingMark) as missing:
        await state.reserve(holds, ttl=60)
    assert missing.value.index == 1
    assert await state.hgetall_many([seeded, lost]) == [{"seeded": 1.0, "usd": 0.5}, {}]
    await state.hincr_many({lost: {"seeded": 1.0}}, ttl=60)
    assert await state.reserve(holds, ttl=60) is None
    counts = await state.hgetall_many([seeded, lost])
    assert [c.get("reserved_usd") for c in counts] == [pytest.approx(0.1), pytest.approx(0.1)]
    unmarked = [Hold(spend_key("key", "other", "day", "d"), {"usd": 0.1}, {"usd": 1.0})]
    assert await state.reserve(unmarked, ttl=60) is None  # no mark asked for: none needed


def test_the_tokenizer_is_warmed_only_where_requests_are_counted() -> None:
    """It costs ~80 MB: a gateway without keys or token limits never loads it."""
    from gateway.config import load_config_text
    from gateway.pipeline.access import uses_tokens

    plain = "providers: {m: {kind: mock}}\nmodels: {a: {deployments: [{provider: m, model: a}]}}\n"
    assert not uses_tokens(load_config_text(plain))
    limited = plain + "limits: {global: {tokens: ['1000/minute']}}\n"
    assert uses_tokens(load_config_text(limited))
    keyed = plain + "auth: {keys: [{id: k, hash: 'sha256:" + "0" * 64 + "'}]}\n"
    assert uses_tokens(load_config_text(keyed))


def test_long_texts_are_counted_once_and_remembered_by_digest() -> None:
    """An agent's system prompt comes with every call: counted once, then looked up."""
    from gateway.accounting import tokens

    system = "You are a coding agent; read and edit files with the tools. " * 40
    fresh = len(tokens.encoder().encode_ordinary(system))
    assert tokens.count_text(system) == fresh
    key_count = len(tokens._counts)
    assert tokens.count_text(system) == fresh and len(tokens._counts) == key_count
    assert all(len(key) == 16 for key in tokens._counts)  # digests, not prompts
    for i in range(tokens.COUNTED_TEXTS + 10):  # bounded
        tokens._counted(f"{i} " + "x" * tokens.RECOUNT_CHARS)
    assert len(tokens._counts) == tokens.COUNTED_TEXTS
