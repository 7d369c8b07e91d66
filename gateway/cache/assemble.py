"""Assemble one complete reply body from the chunks of a stream, as the client saw them.

`chat.completion.chunk` deltas become a `chat.completion` (content, refusal, tool calls and
the deprecated function call joined per choice); `text_completion` chunks become one
`text_completion`. `None` when the stream did not finish every choice: a cut stream is
never cached.
"""

from __future__ import annotations

from typing import Any

from gateway.types import Usage

Chunk = dict[str, Any]


def assemble(chunks: list[Chunk], usage: Usage | None) -> dict[str, Any] | None:
    first = next((c for c in chunks if c.get("choices")), None)
    if first is None:
        return None
    chat = first.get("object") == "chat.completion.chunk"
    choices: dict[int, dict[str, Any]] = {}
    for chunk in chunks:
        for part in chunk.get("choices") or ():
            if isinstance(part, dict):
                index = int(part.get("index") or 0)
                choice = choices.setdefault(index, _new_choice(index, chat))
                _merge(choice, part, chat)
    if any(choice["finish_reason"] is None for choice in choices.values()):
        return None
    body: dict[str, Any] = {
        "id": first.get("id"),
        "object": "chat.completion" if chat else "text_completion",
        "created": first.get("created"),
        "model": first.get("model"),
        "choices": [_finish(choices[i], chat) for i in sorted(choices)],
    }
    fingerprint = next(
        (c["system_fingerprint"] for c in chunks if c.get("system_fingerprint")), None
    )
    if fingerprint:
        body["system_fingerprint"] = fingerprint
    if usage is not None and not usage.estimated:
        body["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
    return body


def _new_choice(index: int, chat: bool) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "finish_reason": None, "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": None}
        choice["tool_calls"] = {}
    else:
        choice["text"] = ""
    return choice


def _merge(choice: dict[str, Any], part: Chunk, chat: bool) -> None:
    if part.get("finish_reason"):
        choice["finish_reason"] = part["finish_reason"]
    _merge_logprobs(choice, part.get("logprobs"))
    if not chat:
        choice["text"] += part.get("text") or ""
        return
    delta = part.get("delta")
    if not isinstance(delta, dict):
        return
    message = choice["message"]
    if delta.get("role"):
        message["role"] = delta["role"]
    for name in ("content", "refusal"):
        text = delta.get(name)
        if isinstance(text, str) and text:  # the role delta's "" is no content yet
            message[name] = (message.get(name) or "") + text
    for call in delta.get("tool_calls") or ():
        _merge_tool_call(choice["tool_calls"], call)
    function_call = delta.get("function_call")
    if isinstance(function_call, dict):
        target = message.setdefault("function_call", {"name": "", "arguments": ""})
        _join_function(target, function_call)


def _merge_tool_call(calls: dict[int, dict[str, Any]], part: Chunk) -> None:
    index = int(part.get("index") or 0)
    call = calls.setdefault(
        index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
    )
    if part.get("id"):
        call["id"] = part["id"]
    if part.get("type"):
        call["type"] = part["type"]
    if isinstance(part.get("function"), dict):
        _join_function(call["function"], part["function"])


def _join_function(target: dict[str, str], part: Chunk) -> None:
    for name in ("name", "arguments"):
        if isinstance(part.get(name), str):
            target[name] += part[name]


def _merge_logprobs(choice: dict[str, Any], logprobs: Any) -> None:
    if not isinstance(logprobs, dict):
        return
    merged = choice["logprobs"] or {}
    for name, value in logprobs.items():
        if isinstance(value, list):
            merged[name] = [*(merged.get(name) or []), *value]
        else:
            merged[name] = value
    choice["logprobs"] = merged


def _finish(choice: dict[str, Any], chat: bool) -> dict[str, Any]:
    if not chat:
        return choice
    calls = choice.pop("tool_calls")
    if calls:
        choice["message"]["tool_calls"] = [calls[i] for i in sorted(calls)]
    return choice
