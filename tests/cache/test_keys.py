"""The exact key: which request fields change it, which don't, and the pinned field lists."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth.principal import Principal
from gateway.cache.keys import IGNORED_FIELDS, KEY_FIELDS, exact_key, semantic_scope
from gateway.context import RequestContext

BASE: dict[str, Any] = {
    "model": "gpt-test",
    "messages": [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is the capital of Austria?"},
    ],
    "temperature": 0,
}
DEPLOYMENTS = ("up/upstream-model",)
ALICE = Principal(key_id="k-alice", team="red")


def ctx_for(body: dict[str, Any], principal: Principal = ALICE, alias: str = "gpt-test"):
    ctx = RequestContext("r1", "chat", body, {}, "127.0.0.1", alias=body["model"])
    ctx.target_alias = alias
    ctx.principal = principal
    return ctx


def key(body: dict[str, Any], **kw: Any) -> str:
    return exact_key(ctx_for(body, **kw), kw.pop("deployments", DEPLOYMENTS), "key")


def test_field_lists_are_pinned() -> None:
    """A new field must be put in one list or the other, on purpose."""
    assert sorted(KEY_FIELDS) == sorted(
        [
            "messages",
            "prompt",
            "suffix",
            "echo",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "functions",
            "function_call",
            "response_format",
            "modalities",
            "audio",
            "prediction",
            "web_search_options",
            "temperature",
            "top_p",
            "seed",
            "stop",
            "n",
            "best_of",
            "presence_penalty",
            "frequency_penalty",
            "logit_bias",
            "max_tokens",
            "max_completion_tokens",
            "logprobs",
            "top_logprobs",
            "reasoning_effort",
            "verbosity",
        ]
    )
    assert sorted(IGNORED_FIELDS) == sorted(
        [
            "model",
            "stream",
            "stream_options",
            "user",
            "safety_identifier",
            "metadata",
            "store",
            "service_tier",
            "prompt_cache_key",
            "prompt_cache_retention",
        ]
    )
    assert not KEY_FIELDS & set(IGNORED_FIELDS)
    assert all(reason for reason in IGNORED_FIELDS.values())


CHANGES_KEY = [
    ("messages", [{"role": "user", "content": "What is the capital of Australia?"}]),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": {}}}]),
    ("tool_choice", "required"),
    ("functions", [{"name": "f"}]),
    ("response_format", {"type": "json_object"}),
    ("temperature", 0.7),
    ("top_p", 0.5),
    ("seed", 42),
    ("stop", ["\n"]),
    ("n", 2),
    ("presence_penalty", 0.5),
    ("frequency_penalty", 0.5),
    ("logit_bias", {"50256": -100}),
    ("max_tokens", 10),
    ("max_completion_tokens", 10),
    ("logprobs", True),
    ("top_logprobs", 3),
    ("reasoning_effort", "high"),
    ("modalities", ["text", "audio"]),
    ("some_future_field", "x"),  # unknown fields are hashed: they may change the answer
]


@pytest.mark.parametrize(("field", "value"), CHANGES_KEY, ids=[c[0] for c in CHANGES_KEY])
def test_answer_changing_field_changes_key(field: str, value: Any) -> None:
    assert key({**BASE, field: value}) != key(BASE)


KEEPS_KEY = [
    ("stream", True),
    ("stream_options", {"include_usage": True}),
    ("user", "end-user-7"),
    ("metadata", {"tag": "x"}),
    ("store", True),
    ("service_tier", "flex"),
    ("safety_identifier", "u1"),
    ("prompt_cache_key", "abc"),
    ("model", "another-name-for-the-same-alias"),
]


@pytest.mark.parametrize(("field", "value"), KEEPS_KEY, ids=[c[0] for c in KEEPS_KEY])
def test_field_that_cannot_change_answer_keeps_key(field: str, value: Any) -> None:
    assert key({**BASE, field: value}) == key(BASE)


def test_key_ignores_json_key_order_and_int_vs_float() -> None:
    reordered = {"temperature": 0.0, "messages": BASE["messages"], "model": "gpt-test"}
    assert key(reordered) == key(BASE)


@pytest.mark.parametrize(
    ("scope", "other", "same"),
    [
        ("key", Principal(key_id="k-bob", team="red"), False),
        ("team", Principal(key_id="k-bob", team="red"), True),
        ("team", Principal(key_id="k-bob", team="blue"), False),
        ("team", Principal(key_id="k-bob"), False),
        ("global", Principal(key_id="k-bob", team="blue"), True),
    ],
)
def test_tenant_scope(scope: str, other: Principal, same: bool) -> None:
    mine = exact_key(ctx_for(BASE), DEPLOYMENTS, scope)  # type: ignore[arg-type]
    theirs = exact_key(ctx_for(BASE, other), DEPLOYMENTS, scope)  # type: ignore[arg-type]
    assert (mine == theirs) is same


def test_routing_choice_and_deployments_change_key() -> None:
    assert key(BASE) != exact_key(ctx_for(BASE, alias="gpt-other"), DEPLOYMENTS, "key")
    assert key(BASE) != exact_key(ctx_for(BASE), ("up/newer-model",), "key")


def scope_of(body: dict[str, Any]) -> str:
    return semantic_scope(ctx_for(body), DEPLOYMENTS, "key")


SYSTEM_B = {"role": "system", "content": "You are a pirate."}
USER_Q = {"role": "user", "content": "What is the capital of Austria?"}


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ({**BASE, "messages": [BASE["messages"][0], {"role": "user", "content": "Hi?"}]}, True),
        ({**BASE, "messages": [SYSTEM_B, USER_Q]}, False),
        ({**BASE, "messages": [USER_Q]}, False),
        (
            {
                **BASE,
                "messages": [
                    BASE["messages"][0],
                    {"role": "user", "content": "Earlier turn"},
                    {"role": "assistant", "content": "ok"},
                    USER_Q,
                ],
            },
            False,
        ),
        ({**BASE, "temperature": 0.2}, False),
        ({**BASE, "response_format": {"type": "json_object"}}, False),
        ({**BASE, "tools": [{"type": "function", "function": {"name": "f"}}]}, False),
        ({**BASE, "stream": True}, True),
    ],
    ids=[
        "new-question",
        "system",
        "no-system",
        "earlier-turns",
        "temp",
        "format",
        "tools",
        "stream",
    ],
)
def test_semantic_scope(other: dict[str, Any], same: bool) -> None:
    assert (scope_of(other) == scope_of(BASE)) is same
