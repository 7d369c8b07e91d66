"""Prompt and completion text for the access log, only when logging.log_prompts is on
(the JSON formatter still redacts secrets in them)."""

from __future__ import annotations

from typing import Any

from gateway.request import CanonicalRequest
from gateway.types import Reply

MAX_CHARS = 4000  # one log line stays readable; the rest is cut with a marker


def prompt_text(request: CanonicalRequest) -> str | None:
    text = request.prompt_text()
    return _cut(text) if text else None


def completion_text(reply: Reply, streamed: list[dict[str, Any]]) -> str | None:
    choices: list[Any] = []
    if reply.body is not None:
        choices = reply.body.get("choices") or []
        texts = [_choice_text(c.get("message") or c) for c in choices if isinstance(c, dict)]
    else:
        texts = [
            _choice_text(c.get("delta") or c)
            for chunk in streamed
            for c in chunk.get("choices") or []
            if isinstance(c, dict)
        ]
    joined = "".join(t for t in texts if t)
    return _cut(joined) if joined else None


def _choice_text(part: dict[str, Any]) -> str:
    return _content(part.get("content") if "content" in part else part.get("text"))


def _content(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # content parts, or a list of prompts
        return " ".join(_content(v.get("text") if isinstance(v, dict) else v) for v in value)
    return ""


def _cut(text: str) -> str:
    return text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + "…[cut]"
