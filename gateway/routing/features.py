"""What routing rules look at, computed once per request and only when asked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway.context import RequestContext

CHARS_PER_TOKEN = 4  # until gateway/tokens.py counts for us: a cheap, stable estimate
CODE_WORDS = ("def ", "class ", "import ", "function ", "const ", "let ", "var ", "public ")
CODE_LINE = re.compile(
    r"^[ \t]*(?:def |class |import |from \S+ import |function |const |let |var |public |#include)"
    r"|[;{}][ \t]*$",
    re.MULTILINE,
)


def looks_like_code(text: str) -> bool:
    """A fenced block, or a line that starts like a declaration or ends like a statement.
    Substring checks first: the regex runs only on text that might match."""
    if "```" in text:
        return True
    maybe = any(c in text for c in ";{}#") or any(word in text for word in CODE_WORDS)
    return maybe and CODE_LINE.search(text) is not None


def message_text(message: Any) -> str:
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def estimate_prompt_tokens(ctx: RequestContext) -> int:
    """The auth/limits stages' count when they made one, else characters / 4."""
    if ctx.prompt_tokens_estimate:
        return ctx.prompt_tokens_estimate
    body = ctx.body
    if ctx.endpoint == "chat":
        messages = body.get("messages")
        chars = sum(len(message_text(m)) for m in messages) if isinstance(messages, list) else 0
    else:
        prompt = body.get("prompt") if ctx.endpoint == "completions" else body.get("input")
        chars = len(prompt) if isinstance(prompt, str) else len(str(prompt or ""))
    return -(-chars // CHARS_PER_TOKEN)


@dataclass
class RequestFeatures:
    """Lazily computed facts about one request (a rule that never asks costs nothing)."""

    ctx: RequestContext

    @cached_property
    def prompt_tokens(self) -> int:
        return estimate_prompt_tokens(self.ctx)

    @cached_property
    def messages(self) -> list[Any]:
        messages = self.ctx.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def turns(self) -> int:
        return len(self.messages)

    @cached_property
    def newest_user_text(self) -> str:
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return message_text(message)
        prompt = self.ctx.body.get("prompt")
        return prompt if isinstance(prompt, str) else ""

    @property
    def has_tools(self) -> bool:
        return bool(self.ctx.body.get("tools") or self.ctx.body.get("functions"))

    @property
    def wants_json(self) -> bool:
        response_format = self.ctx.body.get("response_format")
        if not isinstance(response_format, dict):
            return False
        return response_format.get("type") in ("json_object", "json_schema")

    @cached_property
    def has_code(self) -> bool:
        return looks_like_code(self.newest_user_text)

    @cached_property
    def lowered_text(self) -> str:
        return self.newest_user_text.lower()

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.ctx.body.get("metadata")
        return metadata if isinstance(metadata, dict) else {}
