"""The mock provider's agent modes: what an agent loop or a structured-output client needs
to run offline.

- `tools`: when the request declares tools and the last turn is the user's, call the first
  tool with arguments valid for its JSON schema; after a tool result, answer with text
  that quotes the result.
- `json`: answer with JSON valid for `response_format` (`json_schema` or `json_object`).
Anything else falls back to echoing the newest user turn.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import orjson

MAX_DEPTH = 8  # recursive schemas ($ref cycles) end in null past this depth
# The schema is the client's: sizes it asks for are bounded, so that an example stays small
# (nested arrays: at most MAX_ITEMS ** MAX_DEPTH items).
MAX_ITEMS = 3
MAX_STRING = 4096


@dataclass(frozen=True, slots=True)
class ToolCall:
    ident: str
    name: str
    arguments: str  # JSON text, as chat tool calls carry it


def tool_call_for(body: dict[str, Any]) -> ToolCall | None:
    """The first tool's call when the conversation waits on the model with tools offered."""
    tools = body.get("tools")
    messages = body.get("messages")
    if not isinstance(tools, list) or not tools or not isinstance(messages, list):
        return None
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return None
    function = tools[0].get("function") if isinstance(tools[0], dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        return None
    schema = function.get("parameters")
    arguments = example(schema, schema) if isinstance(schema, dict) else {}
    if not isinstance(arguments, dict):
        arguments = {}
    ident = f"call_mock{uuid.uuid4().hex[:16]}"
    return ToolCall(ident, function["name"], orjson.dumps(arguments).decode())


def tool_result_text(body: dict[str, Any]) -> str | None:
    """Text quoting the newest tool result, when a tool result is the last turn."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    if last.get("role") != "tool":
        return None
    content = last.get("content")
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return f'The tool returned: "{content}"'


def json_answer(body: dict[str, Any], prompt: str) -> str | None:
    """JSON text valid for the request's response_format; None when it asks for none."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if isinstance(schema, dict):
            return orjson.dumps(example(schema, schema, text=prompt)).decode()
    if fmt.get("type") in ("json_schema", "json_object"):
        return orjson.dumps({"answer": prompt}).decode()
    return None


def example(schema: Any, root: dict[str, Any], *, text: str = "example", depth: int = 0) -> Any:
    """A value valid for `schema` (the JSON Schema subset tools and structured outputs use)."""
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return example(_resolve(ref, root), root, text=text, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return example(options[0], root, text=text, depth=depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    return _typed(kind, schema, root, text, depth)


def _typed(kind: str, schema: dict[str, Any], root: dict[str, Any], text: str, depth: int) -> Any:
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, dict):
            return {}
        return {
            name: example(sub, root, text=text, depth=depth + 1) for name, sub in properties.items()
        }
    if kind == "array":
        count = min(max(_number(schema.get("minItems"), 1), 1), MAX_ITEMS)
        return [example(schema.get("items"), root, text=text, depth=depth + 1)] * int(count)
    if kind in ("integer", "number"):
        if "exclusiveMinimum" in schema:
            value = _number(schema["exclusiveMinimum"], 0) + 1
        else:
            value = _number(schema.get("minimum"), 0)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, text)


def _string(schema: dict[str, Any], text: str) -> str:
    formats = {
        "date-time": "2025-01-01T00:00:00Z",
        "date": "2025-01-01",
        "uri": "https://example.com",
    }
    value = formats.get(str(schema.get("format")), text)
    minimum = min(int(_number(schema.get("minLength"), 0)), MAX_STRING)
    if len(value) < minimum:
        value = value.ljust(minimum, "x")
    maximum = schema.get("maxLength")
    if isinstance(maximum, int) and maximum >= 0:
        value = value[:maximum]
    return value


def _number(value: Any, default: float) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and abs(value) < 1e15
    return value if ok else default


def _resolve(ref: str, root: dict[str, Any]) -> Any:
    if not ref.startswith("#/"):
        return None
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node
