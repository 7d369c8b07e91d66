"""The canonical request: one reading of a request body that every stage shares.

Every ingress format (OpenAI Chat Completions, Completions, Embeddings, the Responses API,
Anthropic Messages) is turned into one Chat-Completions-shaped body when it arrives
(`RequestContext.body`). This module is the only place that interprets that body: what the
newest user turn says, how much output the request may produce, how many choices it asks
for, whether it declares tools or a response format. Stages and providers read it through
`CanonicalRequest` and never walk message lists themselves, so a field that changes what a
request costs or means is read the same way everywhere.

Output bound: OpenAI accepts `max_tokens` (legacy) and `max_completion_tokens` (current),
and a request may carry both. Which one an upstream honours differs between servers, so the
gateway treats the larger as the bound (what the request could cost) and, when it clamps,
clamps every field that is present: what goes upstream never exceeds the cap whichever
field the upstream reads. `null` means "not set".

Choices: `n` completions per request (and `best_of` on Completions, which the upstream
generates in full before returning `n` of them) multiply the output, so reservations, caps
and cost estimates use `output bound x choices`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.formats import Endpoint

OUTPUT_BOUND_FIELDS = ("max_completion_tokens", "max_tokens")
CHOICE_FIELDS: dict[Endpoint, tuple[str, ...]] = {
    "chat": ("n",),
    "completions": ("n", "best_of"),
    "embeddings": (),
}


def text_of(content: Any) -> str | None:
    """The text of a message's content: a string, or a list of text parts only (None when
    any part is not text: images, audio, files)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = []
    for part in content:
        if not isinstance(part, dict) or part.get("type") != "text":
            return None
        if not isinstance(part.get("text"), str):
            return None
        texts.append(part["text"])
    return "\n".join(texts)


def visible_text(content: Any) -> str:
    """Whatever text a content value carries, other parts skipped (for rules and logs)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = (p.get("text") for p in content if isinstance(p, dict))
        return "\n".join(p for p in parts if isinstance(p, str))
    return ""


def _positive_int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


UNREAD = -1  # a memo slot not filled yet


# Read-only, not frozen: built per request, and frozen ones cost 3x to build.
@dataclass(slots=True)
class CanonicalRequest:
    """A read-only view of one canonical body (cheap: build one whenever needed). The
    body must not change while the view is in use: its output bound and choices are read
    once (several stages ask for them on every request)."""

    endpoint: Endpoint
    body: Mapping[str, Any]
    _bound: int | None = field(default=UNREAD, init=False, compare=False, repr=False)
    _choices: int = field(default=UNREAD, init=False, compare=False, repr=False)

    @property
    def messages(self) -> list[Any]:
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    def newest_user_text(self) -> str:
        """The text of the newest user turn (Chat), or the prompt (Completions)."""
        if self.endpoint != "chat":
            prompt = self.body.get("prompt")
            return prompt if isinstance(prompt, str) else ""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return visible_text(message.get("content"))
        return ""

    def prompt_text(self) -> str:
        """All input text, joined (access logs, cheap size estimates)."""
        if self.endpoint == "chat":
            parts = [visible_text(m.get("content")) for m in self.messages if isinstance(m, dict)]
            return "\n".join(p for p in parts if p)
        source = self.body.get("prompt" if self.endpoint == "completions" else "input")
        if isinstance(source, list):
            return "\n".join(s for s in source if isinstance(s, str))
        return source if isinstance(source, str) else ""

    def output_bound(self) -> int | None:
        """The most tokens one choice may produce, as the request asks; None if unbounded."""
        bound = self._bound
        if bound == UNREAD:
            bound = None
            for name in OUTPUT_BOUND_FIELDS:  # the larger of the two when both are set
                value = _positive_int(self.body.get(name))
                if value is not None and (bound is None or value > bound):
                    bound = value
            self._bound = bound
        return bound

    def output_bound_field(self) -> str:
        """The field that carries the bound (the larger one when both are set)."""
        bound = self.output_bound()
        for name in OUTPUT_BOUND_FIELDS:
            if bound is not None and self.body.get(name) == bound:
                return name
        return "max_tokens"

    def choices(self) -> int:
        """How many completions the upstream generates for this request."""
        choices = self._choices
        if choices == UNREAD:
            choices = 1
            for name in CHOICE_FIELDS[self.endpoint]:  # the largest count asked for
                count = _positive_int(self.body.get(name))
                if count is not None and count > choices:
                    choices = count
            self._choices = choices
        return choices

    def with_output_bound(self, ceiling: int) -> dict[str, Any]:
        """The body with every output-bound field at most `ceiling` (the default field set
        when none is)."""
        body = dict(self.body)
        present = [name for name in OUTPUT_BOUND_FIELDS if body.get(name) is not None]
        for name in present or ["max_tokens"]:
            current = _positive_int(body.get(name))
            body[name] = ceiling if current is None else min(current, ceiling)
        return body

    @property
    def has_tools(self) -> bool:
        return bool(self.body.get("tools") or self.body.get("functions"))

    @property
    def response_format(self) -> dict[str, Any] | None:
        value = self.body.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def wants_json(self) -> bool:
        fmt = self.response_format
        return fmt is not None and fmt.get("type") in ("json_object", "json_schema")

    @property
    def metadata(self) -> dict[str, Any]:
        metadata = self.body.get("metadata")
        return metadata if isinstance(metadata, dict) else {}
