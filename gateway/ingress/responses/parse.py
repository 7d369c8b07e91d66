"""Responses request -> the canonical (Chat-Completions-shaped) request.

`input` items become messages (function calls and their outputs become tool calls and
tool messages), `instructions` the first system message, `text.format` the
`response_format`, `max_output_tokens` the `max_tokens` every stage reads. Fields the
Chat API has no place for (`metadata`, `store`, `previous_response_id`) stay on the
Response the gateway renders. Every bad value is a 400 naming its parameter.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest
from gateway.ingress.responses.ids import Ids, is_response_id
from gateway.ingress.responses.items import normalize_items
from gateway.ingress.responses.tools import translate_tool_choice, translate_tools

PASSED_AS_IS = ("temperature", "top_p", "user", "parallel_tool_calls", "stream")
# `include` values the translation can honour; the rest are refused by name. A translated
# reply has no reasoning items, so their encrypted content (which Codex-style clients ask
# for on every turn) is included trivially.
HONOURED_INCLUDES: frozenset[str] = frozenset({"reasoning.encrypted_content"})
OPTIONAL_TRANSLATED = frozenset({"tools", "tool_choice", "text", "reasoning"})
TEXT_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}


def check_request(body: dict[str, Any]) -> None:
    """What the gateway itself reads from a Responses body, checked once."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    if not isinstance(body.get("input"), str | list):
        raise InvalidRequest("'input' is required: a string or an array of items.", param="input")
    for name in ("stream", "store", "parallel_tool_calls"):
        if name in body and not isinstance(body[name], bool):
            raise InvalidRequest(f"'{name}' must be a boolean.", param=name)
    bound = body.get("max_output_tokens")
    if bound is not None and (not _is_int(bound) or bound < 1):
        raise InvalidRequest(
            "'max_output_tokens' must be a positive integer.", param="max_output_tokens"
        )
    for name in ("instructions", "user"):
        if body.get(name) is not None and not isinstance(body[name], str):
            raise InvalidRequest(f"'{name}' must be a string.", param=name)
    previous = body.get("previous_response_id")
    if previous is not None and not is_response_id(previous):
        raise InvalidRequest(
            "'previous_response_id' must be a response id.", param="previous_response_id"
        )
    metadata = body.get("metadata")
    if metadata is not None and not _is_metadata(metadata):
        raise InvalidRequest(
            "'metadata' must be at most 16 string pairs (keys to 64, values to 512 characters).",
            param="metadata",
        )


def input_items(body: dict[str, Any], ids: Ids | None = None) -> list[dict[str, Any]]:
    """The request's own input as a list of items, each with an `id`."""
    given = body["input"]
    ids = ids or Ids()
    if isinstance(given, str):  # the common case, built directly
        part = {"type": "input_text", "text": given}
        return [
            {
                "type": "message",
                "id": ids.new("msg"),
                "role": "user",
                "content": [part],
                "status": "completed",
            }
        ]
    return normalize_items(given, "input", ids)


def canonical_body(
    body: dict[str, Any],
    history: list[dict[str, Any]],
    items: list[dict[str, Any]],
    *,
    native: bool = False,
) -> dict[str, Any]:
    """The Chat Completions request equivalent to `body` after `history`'s items."""
    refuse_includes(body.get("include"), native=native)
    messages: list[dict[str, Any]] = []
    instructions = body.get("instructions")
    if instructions:
        messages.append({"role": "system", "content": instructions})
    messages.extend(items_to_messages([*history, *items]))
    if not messages:
        raise InvalidRequest("'input' has no message to answer.", param="input")
    chat: dict[str, Any] = {"model": body["model"], "messages": messages}
    for name in PASSED_AS_IS:
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stream"):  # usage ends every stream, cache replays included
        chat["stream_options"] = {"include_usage": True}
    if body.get("max_output_tokens") is not None:
        chat["max_tokens"] = body["max_output_tokens"]
    if body.keys() & OPTIONAL_TRANSLATED:
        _translate_options(body, chat, native)
    return chat


def _translate_options(body: dict[str, Any], chat: dict[str, Any], native: bool) -> None:
    tools = translate_tools(body.get("tools"), native=native)
    if tools:
        chat["tools"] = tools
    if body.get("tool_choice") is not None:
        chat["tool_choice"] = translate_tool_choice(body["tool_choice"])
    response_format = text_format(body.get("text"))
    if response_format is not None:
        chat["response_format"] = response_format
    effort = _reasoning_effort(body.get("reasoning"))
    if effort is not None:
        chat["reasoning_effort"] = effort


def items_to_messages(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items in order -> chat messages; a tool output must answer a call made before it."""
    messages: list[dict[str, Any]] = []
    calls: set[str] = set()
    for index, item in enumerate(items):
        kind = item["type"]
        if kind == "message":
            messages.append(_message(item))
        elif kind == "function_call":
            calls.add(item["call_id"])
            _tool_call_message(messages).append(
                {
                    "id": item["call_id"],
                    "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]},
                }
            )
        elif kind == "function_call_output":
            if item["call_id"] not in calls:
                raise InvalidRequest(
                    f"No tool call found for function call output with call_id "
                    f"'{item['call_id'][:64]}'.",
                    param=f"input[{index}].call_id",
                )
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
        # reasoning items: the Chat API has no place for them; they are kept in the chain only
    return messages


def _message(item: dict[str, Any]) -> dict[str, Any]:
    role = TEXT_ROLES[item["role"]]
    content = item["content"]
    if isinstance(content, str):
        return {"role": role, "content": content}
    if len(content) == 1 and "text" in content[0]:  # the common case: one text part
        return {"role": role, "content": content[0]["text"]}
    parts = [_part(part) for part in content]
    # Plain text is a string, as chat clients send it (one form: one cache key).
    if all(p["type"] == "text" for p in parts) and (role != "user" or len(parts) == 1):
        return {"role": role, "content": "".join(p["text"] for p in parts)}
    return {"role": role, "content": parts}


def _part(part: dict[str, Any]) -> dict[str, Any]:
    if part["type"] == "input_image":
        image: dict[str, Any] = {"url": part["image_url"]}
        if part.get("detail"):
            image["detail"] = part["detail"]
        return {"type": "image_url", "image_url": image}
    return {"type": "text", "text": part.get("text") or part.get("refusal") or ""}


def _tool_call_message(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool_calls list of the assistant turn a function_call item belongs to."""
    last = messages[-1] if messages else None
    if last is None or last["role"] != "assistant":
        last = {"role": "assistant", "content": None}
        messages.append(last)
    calls: list[dict[str, Any]] = last.setdefault("tool_calls", [])
    return calls


def text_format(text: Any) -> dict[str, Any] | None:
    if text is None:
        return None
    if not isinstance(text, dict):
        raise InvalidRequest("'text' must be an object.", param="text")
    fmt = text.get("format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        if not isinstance(fmt.get("name"), str) or not isinstance(fmt.get("schema"), dict):
            raise InvalidRequest(
                "'text.format' of type json_schema needs a string 'name' and an object 'schema'.",
                param="text.format",
            )
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        return {"type": "json_schema", "json_schema": schema}
    raise InvalidRequest(
        "'text.format.type' must be one of 'text', 'json_object', 'json_schema'.",
        param="text.format.type",
    )


def refuse_includes(include: Any, *, native: bool) -> None:
    if include is None:
        return
    if not isinstance(include, list) or not all(isinstance(v, str) for v in include):
        raise InvalidRequest("'include' must be an array of strings.", param="include")
    refused = [value for value in include if value not in HONOURED_INCLUDES]
    if refused and not native:
        names = ", ".join(f"'{value[:64]}'" for value in refused[:5])
        raise InvalidRequest(
            f"'include' values {names} are not supported for this model.", param="include"
        )


def _reasoning_effort(reasoning: Any) -> str | None:
    if reasoning is None:
        return None
    if not isinstance(reasoning, dict):
        raise InvalidRequest("'reasoning' must be an object.", param="reasoning")
    effort = reasoning.get("effort")
    if effort is not None and not isinstance(effort, str):
        raise InvalidRequest("'reasoning.effort' must be a string.", param="reasoning.effort")
    return effort


def _is_metadata(value: Any) -> bool:
    """OpenAI's bounds: 16 pairs, keys up to 64 characters, values up to 512."""
    return (
        isinstance(value, dict)
        and len(value) <= 16
        and all(
            isinstance(k, str) and len(k) <= 64 and isinstance(v, str) and len(v) <= 512
            for k, v in value.items()
        )
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
