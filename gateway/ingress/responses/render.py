"""The canonical (Chat Completions) reply -> a Response object.

One `Draft` per request carries what is known before the reply (the response id, the
request fields a Response echoes); `response_object` completes it with output, status
and usage. The stream translator (events.py) builds the same items incrementally.
"""

from __future__ import annotations

import time
from typing import Any

from gateway.ingress.responses.ids import Ids

# finish_reason -> why a response is incomplete (None: it completed)
INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}


class Draft:
    __slots__ = ("_echo", "created_at", "id", "ids", "request")

    def __init__(self, request: dict[str, Any]) -> None:
        self.request = request  # the client's Responses body
        self.ids = Ids()  # the response's id and its items'
        self.id = self.ids.new("resp")
        self.created_at = int(time.time())
        self._echo: dict[str, Any] | None = None

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None = None,
        *,
        incomplete_reason: str | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if self._echo is None:  # a stream renders it two or three times
            self._echo = self._response_fields()
        response = self._echo.copy()  # its key order is the Response's
        response["status"] = status
        response["error"] = error
        if incomplete_reason:
            response["incomplete_details"] = {"reason": incomplete_reason}
        response["output"] = output
        response["usage"] = usage
        return response

    def _response_fields(self) -> dict[str, Any]:
        request = self.request
        text: dict[str, Any] = request["text"] if isinstance(request.get("text"), dict) else {}
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": None,
            "error": None,
            "incomplete_details": None,
            "instructions": request.get("instructions"),
            "max_output_tokens": request.get("max_output_tokens"),
            "model": request.get("model"),
            "output": None,
            "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "previous_response_id": request.get("previous_response_id"),
            "reasoning": request.get("reasoning") or {"effort": None, "summary": None},
            "store": request.get("store", True),
            "temperature": request.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, **text},
            "tool_choice": request.get("tool_choice", "auto"),
            "tools": request.get("tools") or [],
            "top_p": request.get("top_p", 1.0),
            "truncation": request.get("truncation") or "disabled",
            "usage": None,
            "user": request.get("user"),
            "metadata": request.get("metadata") or {},
        }


def response_object(draft: Draft, chat: dict[str, Any]) -> dict[str, Any]:
    """The Response for a complete Chat Completions reply."""
    choices = chat.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    choice = choice if isinstance(choice, dict) else {}
    message: dict[str, Any] = choice["message"] if isinstance(choice.get("message"), dict) else {}
    reason = INCOMPLETE_REASONS.get(choice.get("finish_reason") or "")
    item_status = "incomplete" if reason else "completed"
    output: list[dict[str, Any]] = []
    parts = content_parts(message)
    if parts:
        output.append(message_item(draft.ids.new("msg"), parts, item_status))
    for call in message.get("tool_calls") or ():
        if not isinstance(call, dict):
            continue
        function = call["function"] if isinstance(call.get("function"), dict) else {}
        output.append(
            function_call_item(
                draft.ids.new("fc"),
                call.get("id") or draft.ids.new("call"),
                function.get("name") or "",
                function.get("arguments") or "",
                item_status,
            )
        )
    status = "incomplete" if reason else "completed"
    return draft.response(status, output, usage(chat.get("usage")), incomplete_reason=reason)


def content_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, str) and text:
        parts.append(text_part(text))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    return parts


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def message_item(item_id: str, parts: list[dict[str, Any]], status: str) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def usage(chat_usage: Any) -> dict[str, Any] | None:
    if not isinstance(chat_usage, dict):
        return None
    prompt = _int(chat_usage.get("prompt_tokens"))
    completion = _int(chat_usage.get("completion_tokens"))
    prompt_details = chat_usage.get("prompt_tokens_details") or {}
    completion_details = chat_usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": _int(prompt_details.get("cached_tokens"))},
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": _int(completion_details.get("reasoning_tokens"))
        },
        "total_tokens": prompt + completion,
    }


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
