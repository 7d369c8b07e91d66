"""Cache keys: an explicit list of the request fields that change the answer.

Every request field is either in `KEY_FIELDS` (hashed) or in `IGNORED_FIELDS` (with the
reason it cannot change the answer). A field in neither list — one OpenAI adds next year,
or a provider-specific extra — is hashed too: an unknown field may change the answer, and
a needless miss is cheap while a wrong hit is not. `tests/cache/test_keys.py` pins
both lists, so a new field forces a decision here.

`model` is never hashed as the client wrote it: the key holds the alias routing chose and
the deployments behind it, so re-pointing an alias at another model empties its cache.
The tenant scope (per key, per team, or global) is part of every key.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from gateway.config.cache import Scope
from gateway.context import RequestContext

# Request fields that decide the answer, hashed as sent.
KEY_FIELDS: frozenset[str] = frozenset(
    {
        # what is asked
        "messages",
        "prompt",  # legacy completions
        "suffix",  # legacy completions
        "echo",  # legacy completions: the prompt is part of the text
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",  # deprecated form of tools
        "function_call",  # deprecated form of tool_choice
        "response_format",
        "modalities",
        "audio",  # output voice and format
        "prediction",  # predicted output: may change the text produced
        "web_search_options",
        # sampling
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
    }
)

# Request fields left out of the key, each with why it cannot change the answer.
IGNORED_FIELDS: dict[str, str] = {
    "model": "replaced by the alias chosen by routing and its deployments' model names",
    "stream": "the same answer is replayed as a stream or as one body",
    "stream_options": "only asks for a usage chunk; the replay adds it when asked",
    "user": "an end-user id for the provider's abuse monitoring; tenants are the scope",
    "safety_identifier": "an end-user id for abuse monitoring, like `user`",
    "metadata": "tags for the provider's stored completions, not read by the model",
    "store": "whether the provider keeps the completion, not what it says",
    "service_tier": "the provider's latency and price tier, not the content",
    "prompt_cache_key": "a routing hint for the provider's prompt cache",
    "prompt_cache_retention": "how long the provider keeps its prompt cache",
}

# Numbers the client may write as 1 or 1.0: hashed as floats so both give one key.
_FLOAT_FIELDS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")
# Semantic scope: the newest user turn is embedded, not hashed; everything else is.
SEMANTIC_EXCLUDED = frozenset({"messages", "prompt"})
SYSTEM_ROLES = frozenset({"system", "developer"})


def tenant(ctx: RequestContext, scope: Scope) -> str:
    """The tenant part of a key; `team` without a team falls back to the key."""
    principal = ctx.principal
    if scope == "global":
        return "global"
    if scope == "team" and principal.team:
        return f"team:{principal.team}"
    return f"key:{principal.key_id}"


def model_identity(ctx: RequestContext, deployment_models: tuple[str, ...]) -> list[Any]:
    return [ctx.endpoint, ctx.target_alias or ctx.alias, list(deployment_models)]


def keyed_fields(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the ignored fields, with float-valued numbers normalised."""
    fields = {k: v for k, v in body.items() if k not in IGNORED_FIELDS}
    for name in _FLOAT_FIELDS:
        value = fields.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            fields[name] = float(value)
    return fields


def digest(value: Any) -> str:
    """blake2b-128 of orjson's canonical form (sorted keys)."""
    data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def exact_key(ctx: RequestContext, deployment_models: tuple[str, ...], scope: Scope) -> str:
    identity = [tenant(ctx, scope), *model_identity(ctx, deployment_models)]
    return "x:" + digest([identity, keyed_fields(ctx.body)])


def semantic_scope(ctx: RequestContext, deployment_models: tuple[str, ...], scope: Scope) -> str:
    """Everything but the newest user turn: model, system prompt, earlier turns, tools,
    response format, sampling parameters and tenant. Entries never match across scopes."""
    messages = ctx.body.get("messages") or []
    system = [m for m in messages if isinstance(m, dict) and m.get("role") in SYSTEM_ROLES]
    earlier = [
        m for m in messages[:-1] if isinstance(m, dict) and m.get("role") not in SYSTEM_ROLES
    ]
    fields = {k: v for k, v in keyed_fields(ctx.body).items() if k not in SEMANTIC_EXCLUDED}
    identity = [tenant(ctx, scope), *model_identity(ctx, deployment_models)]
    return "s:" + digest([identity, digest(system), digest(earlier), fields])
