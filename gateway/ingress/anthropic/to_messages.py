"""A canonical Chat Completions request, written as an Anthropic Messages request: the
parser's translation reversed, for chat (and Responses) clients of `kind: anthropic`.

Anthropic rejects fields it does not know, so only what maps is sent: system turns join
into `system`, tool turns become `tool_result` blocks in a user turn, consecutive turns of
one role merge (Messages alternates roles), and `max_tokens` (required there) defaults to
DEFAULT_MAX_TOKENS. Anthropic's own fields a chat client may add (`top_k`, `thinking`) pass
through untouched.
"""

from __future__ import annotations

from typing import Any

import orjson

from gateway.errors import InvalidRequest

DEFAULT_MAX_TOKENS = 4096
PASSTHROUGH = ("top_k", "thinking")  # Anthropic-only fields a chat client may add
TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}


def messages_request(body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(body.get("messages") or ()):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(_plain_text(message.get("content")))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), f"messages[{i}]"))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, f"messages[{i}]"))
        elif role in ("tool", "function"):
            _append(turns, "user", [_tool_result(message)])
        else:
            raise InvalidRequest(f"'messages[{i}].role' {role!r} is not supported.", param="role")
    out: dict[str, Any] = {
        "model": body["model"],
        "max_tokens": body.get("max_completion_tokens") or body.get("max_tokens"),
        "messages": turns,
    }
    out["max_tokens"] = out["max_tokens"] or DEFAULT_MAX_TOKENS
    if system:
        out["system"] = "\n\n".join(system)
    if stream:
        out["stream"] = True
    _sampling(body, out)
    _tools(body, out)
    return out


def _append(turns: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _plain_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _user_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    blocks: list[dict[str, Any]] = []
    for part in content or ():
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            blocks.append({"type": "text", "text": str(part.get("text", ""))})
        elif kind == "image_url":
            blocks.append(_image(part.get("image_url"), where))
        else:
            raise InvalidRequest(
                f"'{where}': content part {kind!r} cannot be sent to an Anthropic model.",
                param=where,
            )
    return blocks


def _image(image: Any, where: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise InvalidRequest(f"'{where}': image_url needs a url.", param=where)
    if url.startswith("data:") and ";base64," in url:
        media, data = url[5:].split(";base64,", 1)
        return {"type": "image", "source": {"type": "base64", "media_type": media, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _assistant_blocks(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    text = _plain_text(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{where}.tool_calls' must be an array.", param=where)
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            raise InvalidRequest(f"'{where}.tool_calls': each needs a function.", param=where)
        arguments = function.get("arguments") or "{}"
        try:
            parsed = orjson.loads(arguments)
        except (orjson.JSONDecodeError, TypeError):
            parsed = None
        if not isinstance(parsed, dict):
            raise InvalidRequest(
                f"'{where}.tool_calls': arguments must be a JSON object.", param=where
            )
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": function.get("name"),
                "input": parsed,
            }
        )
    return blocks


def _tool_result(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "tool_result",
        "tool_use_id": message.get("tool_call_id") or message.get("name") or "",
        "content": _plain_text(message.get("content")),
    }


def _sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if isinstance(temperature, int | float) and not isinstance(temperature, bool):
        out["temperature"] = min(temperature, 1.0)  # Anthropic's range is 0..1, OpenAI's 0..2
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if isinstance(stop, str) and stop:
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and stop:
        out["stop_sequences"] = [str(s) for s in stop]
    if isinstance(body.get("user"), str):
        out["metadata"] = {"user_id": body["user"]}
    for name in PASSTHROUGH:
        if name in body:
            out[name] = body[name]


def _tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = []
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not function.get("name"):
            raise InvalidRequest(
                "Only function tools can be sent to an Anthropic model.", param="tools"
            )
        entry = {
            "name": function["name"],
            "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
        }
        if function.get("description"):
            entry["description"] = function["description"]
        tools.append(entry)
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    mapped: dict[str, Any] | None = None
    if isinstance(choice, str) and choice in TOOL_CHOICES:
        mapped = {"type": TOOL_CHOICES[choice]}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        mapped = {"type": "tool", "name": choice["function"].get("name")}
    if body.get("parallel_tool_calls") is False and tools:
        mapped = mapped or {"type": "auto"}
        mapped["disable_parallel_tool_use"] = True
    if mapped is not None and (tools or mapped["type"] == "none"):
        out["tool_choice"] = mapped
