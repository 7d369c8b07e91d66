"""An Anthropic Messages request, checked and turned into the canonical Chat Completions body.

Only what the canonical request can say is carried over; what it cannot (`top_k`,
`thinking`, server tools, thinking blocks) is named in `Parsed.dropped`, which the
endpoint reports in a response header when the request is translated. A deployment that
speaks Messages natively receives the client's raw body instead, so nothing is lost there.
Every malformed field is an InvalidRequest naming it (a 400 in Anthropic's shape).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import InvalidRequest

ROLES = frozenset({"user", "assistant"})
# Fields the translation reads; any other top-level field is named as dropped (when its
# name is a plain identifier: the client's text never goes into a header otherwise).
READ = frozenset(
    {"model", "max_tokens", "messages", "system", "stream", "temperature", "top_p", "top_k"}
    | {"stop_sequences", "metadata", "tools", "tool_choice", "thinking"}
)
PLAIN_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_NAMED = 8
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


@dataclass(slots=True)
class Parsed:
    body: dict[str, Any]
    dropped: list[str] = field(default_factory=list)


def parse_messages(raw: dict[str, Any], *, count_only: bool = False) -> Parsed:
    """The canonical chat body for `raw`; `count_only` (count_tokens) needs no max_tokens."""
    model = raw.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    parsed = Parsed({"model": model})
    body = parsed.body
    if not count_only or "max_tokens" in raw:
        body["max_tokens"] = _positive_int(raw.get("max_tokens"), "max_tokens")
    messages = _system(raw.get("system"))
    raw_messages = raw.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(raw_messages):
        messages.extend(_message(message, i, parsed.dropped))
    body["messages"] = messages
    stream = raw.get("stream")
    if stream is not None:
        if not isinstance(stream, bool):
            raise InvalidRequest("'stream' must be a boolean.", param="stream")
        body["stream"] = stream
        if stream:  # Messages streams always end with usage
            body["stream_options"] = {"include_usage": True}
    _sampling(raw, parsed)
    _tools(raw, parsed)
    if len(raw) > 3 and not READ.issuperset(raw):
        unread = [name for name in raw if name not in READ and PLAIN_NAME.fullmatch(name)]
        parsed.dropped.extend(unread[:MAX_NAMED])
    return parsed


def _positive_int(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidRequest(f"'{name}' is required and must be a positive integer.", param=name)
    return value


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None:
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}] if system else []
    if not isinstance(system, list):
        raise InvalidRequest(
            "'system' must be a string or an array of text blocks.", param="system"
        )
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"'system[{i}]' must be a text block.", param=f"system[{i}]")
        texts.append({"type": "text", "text": _text(block, f"system[{i}]")})
    return [{"role": "system", "content": texts}] if texts else []


def _text(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise InvalidRequest(f"'{where}.text' must be a string.", param=f"{where}.text")
    return text


def _message(message: Any, index: int, dropped: list[str]) -> list[dict[str, Any]]:
    where = f"messages[{index}]"
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        raise InvalidRequest(
            f"'{where}' must be an object with role 'user' or 'assistant'.", param=where
        )
    role, content = message["role"], message.get("content")
    if type(content) is str:
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array of blocks.", param=f"{where}.content"
        )
    if role == "assistant":
        return [_assistant(content, where, dropped)]
    return _user(content, where)


def _assistant(blocks: list[Any], where: str, dropped: list[str]) -> dict[str, Any]:
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        if type(block) is dict and block.get("type") == "text" and type(block.get("text")) is str:
            texts.append(block["text"])
            continue
        at = f"{where}.content[{i}]"
        kind = _block_type(block, at)
        if kind == "text":
            texts.append(_text(block, at))
        elif kind == "tool_use":
            calls.append(_tool_call(block, at))
        elif kind in ("thinking", "redacted_thinking"):
            _note(dropped, "thinking blocks")
        else:
            raise InvalidRequest(f"'{at}': block type '{kind}' is not allowed here.", param=at)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict[str, Any], where: str) -> dict[str, Any]:
    ident, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
    if not isinstance(ident, str) or not ident or not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{where}' needs a string 'id' and 'name'.", param=where)
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"'{where}.input' must be an object.", param=f"{where}.input")
    return {
        "id": ident,
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }


def _user(blocks: list[Any], where: str) -> list[dict[str, Any]]:
    """Tool results first (chat wants them right after the assistant's calls), then the
    rest of the turn as one user message."""
    results: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for i, block in enumerate(blocks):
        if type(block) is dict and block.get("type") == "text" and type(block.get("text")) is str:
            parts.append({"type": "text", "text": block["text"]})
            continue
        at = f"{where}.content[{i}]"
        kind = _block_type(block, at)
        if kind == "text":
            parts.append({"type": "text", "text": _text(block, at)})
        elif kind == "image":
            parts.append(_image(block, at))
        elif kind == "tool_result":
            result, images = _tool_result(block, at)
            results.append(result)
            parts.extend(images)
        else:
            raise InvalidRequest(f"'{at}': block type '{kind}' is not supported.", param=at)
    if parts:
        results.append({"role": "user", "content": parts})
    return results


def _block_type(block: Any, where: str) -> str:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise InvalidRequest(f"'{where}' must be an object with a string 'type'.", param=where)
    return str(block["type"])


def _image(block: dict[str, Any], where: str) -> dict[str, Any]:
    source = block.get("source")
    if not isinstance(source, dict):
        source = {}
    kind = source.get("type")
    if kind == "base64":
        media, data = source.get("media_type"), source.get("data")
        if isinstance(media, str) and isinstance(data, str) and "," not in media:
            return {"type": "image_url", "image_url": {"url": f"data:{media};base64,{data}"}}
    if kind == "url" and isinstance(source.get("url"), str):
        return {"type": "image_url", "image_url": {"url": source["url"]}}
    raise InvalidRequest(
        f"'{where}.source' must be a base64 source (media_type, data) or a url source.",
        param=f"{where}.source",
    )


def _tool_result(block: dict[str, Any], where: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The tool message, and the images of the result (chat tool messages carry text only)."""
    ident = block.get("tool_use_id")
    if not isinstance(ident, str) or not ident:
        raise InvalidRequest(f"'{where}.tool_use_id' must be a string.", param=where)
    content = block.get("content", "")
    texts: list[str] = []
    images: list[dict[str, Any]] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for i, part in enumerate(content):
            at = f"{where}.content[{i}]"
            kind = _block_type(part, at)
            if kind == "text":
                texts.append(_text(part, at))
            elif kind == "image":
                images.append(_image(part, at))
            else:
                raise InvalidRequest(f"'{at}': block type '{kind}' is not supported.", param=at)
    else:
        raise InvalidRequest(f"'{where}.content' must be a string or an array.", param=where)
    text = "\n".join(texts)
    if block.get("is_error") is True:
        text = f"[tool error] {text}"  # chat has no error flag: the model reads it instead
    return {"role": "tool", "tool_call_id": ident, "content": text}, images


def _sampling(raw: dict[str, Any], parsed: Parsed) -> None:
    body = parsed.body
    for name in ("temperature", "top_p"):
        value = raw.get(name)
        if value is None:
            continue
        if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
            raise InvalidRequest(f"'{name}' must be a non-negative number.", param=name)
        body[name] = value
    stops = raw.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops):
            raise InvalidRequest(
                "'stop_sequences' must be an array of strings.", param="stop_sequences"
            )
        if stops:
            body["stop"] = stops
    metadata = raw.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidRequest("'metadata' must be an object.", param="metadata")
        user = metadata.get("user_id")
        if isinstance(user, str) and user:
            body["user"] = user
    if raw.get("top_k") is not None:
        _note(parsed.dropped, "top_k")
    if raw.get("thinking") is not None:
        _note(parsed.dropped, "thinking")  # no portable equivalent in Chat Completions


def _tools(raw: dict[str, Any], parsed: Parsed) -> None:
    tools = raw.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("'tools' must be an array.", param="tools")
        functions = _functions(tools, parsed)
        if functions:
            parsed.body["tools"] = functions
    choice = raw.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    kind = kind if isinstance(kind, str) else None
    if kind in TOOL_CHOICES:
        parsed.body["tool_choice"] = TOOL_CHOICES[kind]
    elif kind == "tool" and isinstance(choice.get("name"), str):
        parsed.body["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequest(
            "'tool_choice' must be {type: auto|any|none} or {type: tool, name}.",
            param="tool_choice",
        )
    if choice.get("disable_parallel_tool_use") is True and "tools" in parsed.body:
        parsed.body["parallel_tool_calls"] = False


def _functions(tools: list[Any], parsed: Parsed) -> list[dict[str, Any]]:
    """Client tools as chat functions. Agents send dozens on every turn: the common case
    runs without building error locations (the slow path finds and names the bad one)."""
    functions = []
    for tool in tools:
        if type(tool) is not dict:
            break
        name, schema, kind = tool.get("name"), tool.get("input_schema"), tool.get("type")
        if type(name) is not str or not name:
            break
        if kind is not None and kind != "custom":
            _note(parsed.dropped, "server tools")  # Anthropic-run tools: native deployments only
            continue
        if type(schema) is not dict:
            break
        description = tool.get("description")
        if type(description) is str:
            function = {"name": name, "description": description, "parameters": schema}
        else:
            function = {"name": name, "parameters": schema}
        functions.append({"type": "function", "function": function})
    else:
        return functions
    raise _tool_error(tools)


def _tool_error(tools: list[Any]) -> InvalidRequest:
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) or not tool["name"]:
            return InvalidRequest(f"'{where}' must be an object with a string 'name'.", param=where)
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
            return InvalidRequest(
                f"'{where}.input_schema' must be an object.", param=f"{where}.input_schema"
            )
    return InvalidRequest("'tools' is invalid.", param="tools")


def _note(dropped: list[str], what: str) -> None:
    if what not in dropped:
        dropped.append(what)
