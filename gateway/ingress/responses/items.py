"""Responses input items: checked and normalised (every item gets a type and an id).

Normalised items are what the store keeps and what `input_items` lists; their shape is
what `parse.items_to_messages` may rely on without checking again.
"""

from __future__ import annotations

from typing import Any

from gateway.errors import InvalidRequest
from gateway.ingress.responses.ids import Ids, shown

MESSAGE_ROLES = frozenset({"user", "system", "developer", "assistant"})
TEXT_PARTS = frozenset({"input_text", "output_text", "refusal"})
MAX_ID = 128


def normalize_items(items: list[Any], param: str, ids: Ids | None = None) -> list[dict[str, Any]]:
    """Checked items; those without an id get one from `ids` (the response's)."""
    ids = ids or Ids()
    return [normalize_item(item, f"{param}[{i}]", ids) for i, item in enumerate(items)]


def normalize_item(item: Any, param: str, ids: Ids) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidRequest(f"'{param}' must be an object.", param=param)
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _message(item, param, ids)
    if kind == "function_call":
        return {
            "type": "function_call",
            "id": _id(item, "fc", param, ids),
            "call_id": _string(item, "call_id", param, limit=MAX_ID),
            "name": _string(item, "name", param, limit=MAX_ID),
            "arguments": _string(item, "arguments", param),
            "status": "completed",
        }
    if kind == "function_call_output":
        return {
            "type": "function_call_output",
            "id": _id(item, "fco", param, ids),
            "call_id": _string(item, "call_id", param, limit=MAX_ID),
            "output": _output_text(item.get("output"), f"{param}.output"),
            "status": "completed",
        }
    if kind == "reasoning":
        summary = item.get("summary")
        return {
            "type": "reasoning",
            "id": _id(item, "rs", param, ids),
            "summary": summary if isinstance(summary, list) else [],
        }
    raise InvalidRequest(
        f"Unknown input item type {shown(kind)} in '{param}'.", param=f"{param}.type"
    )


def _message(item: dict[str, Any], param: str, ids: Ids) -> dict[str, Any]:
    role = item.get("role")
    if not isinstance(role, str) or role not in MESSAGE_ROLES:  # a dict is unhashable
        raise InvalidRequest(
            f"'{param}.role' must be one of user, system, developer, assistant.",
            param=f"{param}.role",
        )
    content = item.get("content")
    if isinstance(content, str):
        parts = [{"type": "output_text" if role == "assistant" else "input_text", "text": content}]
    elif isinstance(content, list):
        parts = [_part(part, f"{param}.content[{i}]") for i, part in enumerate(content)]
    else:
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array of parts.", param=f"{param}.content"
        )
    message = {
        "type": "message",
        "id": _id(item, "msg", param, ids),
        "role": role,
        "content": parts,
    }
    message["status"] = "completed"
    return message


def _part(part: Any, param: str) -> dict[str, Any]:
    kind = part.get("type") if isinstance(part, dict) else None
    if isinstance(kind, str) and kind in TEXT_PARTS:  # a dict is unhashable
        field = "refusal" if kind == "refusal" else "text"
        text = part.get(field)
        if not isinstance(text, str):
            raise InvalidRequest(f"'{param}.{field}' must be a string.", param=f"{param}.{field}")
        normalised: dict[str, Any] = {"type": kind, field: text}
        if kind == "output_text":
            normalised["annotations"] = []
        return normalised
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"'{param}.image_url' must be a URL or data URL (file ids are not supported).",
                param=f"{param}.image_url",
            )
        image: dict[str, Any] = {"type": "input_image", "image_url": url}
        if part.get("detail") in ("low", "high", "auto"):
            image["detail"] = part["detail"]
        return image
    raise InvalidRequest(f"Unsupported content part type {shown(kind)} in '{param}'.", param=param)


def _output_text(output: Any, param: str) -> str:
    """A tool's output: a string, or text parts joined (the Chat API takes text)."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        texts = [p.get("text") for p in output if isinstance(p, dict)]
        if all(isinstance(t, str) for t in texts) and len(texts) == len(output):
            return "".join(texts)  # type: ignore[arg-type]
    raise InvalidRequest(f"'{param}' must be a string or an array of text parts.", param=param)


def _string(item: dict[str, Any], name: str, param: str, *, limit: int | None = None) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (limit is not None and not 0 < len(value) <= limit):
        bound = f" of 1 to {limit} characters" if limit else ""
        raise InvalidRequest(f"'{param}.{name}' must be a string{bound}.", param=f"{param}.{name}")
    return value


def _id(item: dict[str, Any], prefix: str, param: str, ids: Ids) -> str:
    given = item.get("id")
    if given is None:
        return ids.new(prefix)
    if not isinstance(given, str) or not 0 < len(given) <= MAX_ID:
        raise InvalidRequest(f"'{param}.id' must be a short string.", param=f"{param}.id")
    return given
