"""What routing rules look at, computed once per request and only when asked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from gateway.context import RequestContext

CHARS_PER_TOKEN = 4  # until gateway/accounting/tokens.py counts for us: a cheap, stable estimate
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


def estimate_prompt_tokens(ctx: RequestContext) -> int:
    """The auth/limits stages' count when they made one, else characters / 4."""
    if ctx.prompt_tokens_estimate:
        return ctx.prompt_tokens_estimate
    chars = len(ctx.request.prompt_text())
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
        return self.ctx.request.messages

    @property
    def turns(self) -> int:
        return len(self.messages)

    @cached_property
    def newest_user_text(self) -> str:
        return self.ctx.request.newest_user_text()

    @property
    def has_tools(self) -> bool:
        return self.ctx.request.has_tools

    @property
    def wants_json(self) -> bool:
        return self.ctx.request.wants_json

    @cached_property
    def has_code(self) -> bool:
        return looks_like_code(self.newest_user_text)

    @cached_property
    def lowered_text(self) -> str:
        return self.newest_user_text.lower()

    @property
    def metadata(self) -> dict[str, Any]:
        return self.ctx.request.metadata
