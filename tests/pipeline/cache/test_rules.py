"""Which requests the cache stage looks up, stores or bypasses; which qualify as semantic."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.auth.principal import Principal
from gateway.cache.exact import DisabledCache
from gateway.cache.rules import qualifies_for_semantic, storable_body
from gateway.config.cache import CacheConfig, SemanticCacheConfig
from gateway.config.schema import DeploymentConfig, ModelConfig
from gateway.context import RequestContext
from gateway.observability.metrics import Metrics
from gateway.pipeline.cache import Cache

MODELS = {
    "on": ModelConfig(deployments=[DeploymentConfig(provider="p", model="m")]),
    "off": ModelConfig(deployments=[DeploymentConfig(provider="p", model="m")], cache=False),
}
USER = {"role": "user", "content": "What is the capital of Austria?"}


def ctx(body: dict[str, Any] | None = None, headers: dict[str, str] | None = None, **kw: Any):
    c = RequestContext(
        "r", kw.pop("endpoint", "chat"), body or {"messages": [USER]}, headers or {}, "127.0.0.1"
    )
    c.target_alias = kw.pop("alias", "on")
    c.principal = kw.pop("principal", Principal(key_id="k"))
    return c


STAGE = Cache(CacheConfig(enabled=True), MODELS, DisabledCache(), None, Metrics())


@pytest.mark.parametrize(
    ("request_ctx", "lookup", "store"),
    [
        (ctx(), True, True),
        (ctx(headers={"cache-control": "no-cache"}), False, True),
        (ctx(headers={"cache-control": "max-age=0, No-Cache"}), False, True),
        (ctx(headers={"cache-control": "no-store"}), None, None),
        (ctx(alias="off"), None, None),
        (ctx(principal=Principal(key_id="k", metadata={"cache": False})), None, None),
        (ctx(endpoint="embeddings"), None, None),
        (ctx({"messages": [USER], "n": 3}), True, False),
    ],
    ids=[
        "default",
        "no-cache",
        "no-cache-mixed",
        "no-store",
        "model-off",
        "key-off",
        "embeddings",
        "n-gt-1",
    ],
)
def test_directives(request_ctx: RequestContext, lookup: bool | None, store: bool | None) -> None:
    directives = STAGE.directives(request_ctx)
    if lookup is None:
        assert directives is None
    else:
        assert directives is not None
        assert (directives.lookup, directives.store) == (lookup, store)


SEMANTIC = SemanticCacheConfig(enabled=True, max_temperature=0.3, max_messages=3)
IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}


@pytest.mark.parametrize(
    ("body", "qualifies"),
    [
        ({"messages": [USER], "temperature": 0}, True),
        ({"messages": [USER], "temperature": 0.3}, True),
        ({"messages": [USER]}, False),  # the default temperature is 1
        ({"messages": [USER], "temperature": 0.7}, False),
        ({"messages": [USER], "temperature": 0, "n": 2}, False),
        ({"messages": [USER], "temperature": 0, "tools": [{"type": "function"}]}, False),
        ({"messages": [USER] * 4, "temperature": 0}, False),
        ({"messages": [{"role": "user", "content": [IMAGE]}], "temperature": 0}, False),
        (
            {
                "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
                "temperature": 0,
            },
            True,
        ),
        ({"messages": [USER, {"role": "assistant", "content": "x"}], "temperature": 0}, False),
        ({"messages": [{"role": "user", "content": "  "}], "temperature": 0}, False),
        ({"messages": [{"role": "user", "content": "x" * 2000}], "temperature": 0}, True),
        ({"messages": [{"role": "user", "content": "x" * 2001}], "temperature": 0}, False),
    ],
    ids=[
        "cold",
        "at-bound",
        "default-temp",
        "hot",
        "n",
        "tools",
        "long",
        "image",
        "text-parts",
        "last-not-user",
        "blank",
        "at-length-bound",
        "too-long-to-judge",
    ],
)
def test_semantic_qualification(body: dict[str, Any], qualifies: bool) -> None:
    assert qualifies_for_semantic(ctx(body), SEMANTIC) is qualifies


def body_with(*finishes: str | None) -> dict[str, Any]:
    return {"choices": [{"index": i, "finish_reason": f} for i, f in enumerate(finishes)]}


@pytest.mark.parametrize(
    ("body", "allow_n", "stored"),
    [
        (body_with("stop"), False, True),
        (body_with("length"), False, True),
        (body_with("tool_calls"), False, True),
        (body_with("content_filter"), False, False),
        (body_with(None), False, False),
        (body_with("stop", "stop"), False, False),
        (body_with("stop", "stop"), True, True),
        ({"error": {"message": "x"}}, False, False),
        ({"choices": []}, False, False),
        (None, False, False),
    ],
)
def test_only_complete_successful_bodies_are_stored(body: Any, allow_n: bool, stored: bool) -> None:
    assert (storable_body(body, allow_n=allow_n) is not None) is stored
