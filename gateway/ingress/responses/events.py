"""Chat Completions stream chunks -> Responses stream events, one chunk at a time.

The events are the ones OpenAI sends, in its order: `response.created`,
`response.in_progress`, then per output item `output_item.added`, (for a message)
`content_part.added`, `output_text.delta`…, `output_text.done`, `content_part.done`,
(for a function call) `function_call_arguments.delta`…, `.done`, and `output_item.done`;
last `response.completed` (or `response.incomplete`) with usage, or `response.failed`.
Each carries a `sequence_number`; item ids are the ones the final Response holds.

The `*_encoded` methods give the same events as SSE bytes (the hot path): a text reply's
events come from templates (sse.py), and a Response encoded once is spliced into its
events; anything else is built as dicts and encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.errors import GatewayError
from gateway.ingress.responses.render import (
    INCOMPLETE_REASONS,
    Draft,
    function_call_item,
    message_item,
    text_part,
    usage,
)
from gateway.ingress.responses.sse import (
    delta_fields,
    encode_event,
    message_added,
    message_done,
    text_delta,
    with_response,
)

Event = dict[str, Any]


@dataclass(slots=True)
class _OpenItem:
    item: dict[str, Any]
    index: int  # output_index
    buffer: list[str] = field(default_factory=list)  # text or argument deltas so far
    delta_fields: bytes = b""  # a message's text delta fields before the text, encoded


class EventTranslator:
    def __init__(self, draft: Draft) -> None:
        self.draft = draft
        self.sequence = 0
        self.output: list[dict[str, Any]] = []
        self.message: _OpenItem | None = None
        self.calls: dict[int, _OpenItem] = {}  # the chunk's tool_call index -> its item
        self.open: list[_OpenItem] = []
        self.usage: dict[str, Any] | None = None
        self.finish_reason: str | None = None

    def event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return event

    def start(self) -> list[Event]:
        snapshot = self.draft.response("in_progress", [])
        return [
            self.event("response.created", response=snapshot),
            self.event("response.in_progress", response=snapshot),
        ]

    def start_encoded(self) -> bytes:
        snapshot = orjson.dumps(self.draft.response("in_progress", []))
        self.sequence += 2
        created = with_response("response.created", self.sequence - 2, snapshot)
        return created + with_response("response.in_progress", self.sequence - 1, snapshot)

    def feed_encoded(self, chunk: dict[str, Any]) -> bytes:
        """`feed`'s events, encoded (b"" for none)."""
        text = _plain_text(chunk)
        message = self.message
        if text is not None and message is not None:  # nearly every chunk: more text
            message.buffer.append(text)
            self.sequence += 1
            return text_delta(self.sequence - 1, message.delta_fields, text)
        if text is None:
            return b"".join([encode_event(event) for event in self.feed(chunk)])
        message = self.message = self._add_message()
        opening = message_added(self.sequence, message.index, message.item["id"])
        self.sequence += 2
        return opening + self.feed_encoded(chunk)

    def finish_encoded(self) -> tuple[dict[str, Any], bytes]:
        """`finish`, its events encoded."""
        closing = [self._close_encoded(opened) for opened in list(self.open)]
        return self._final(), b"".join(closing)

    def terminal_encoded(self, final: dict[str, Any], encoded: bytes) -> bytes:
        """`terminal` for `final`, given as `encoded` (the bytes the store kept)."""
        self.sequence += 1
        return with_response(f"response.{final['status']}", self.sequence - 1, encoded)

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        """The events for one chunk (a text delta, the common case, stays cheap)."""
        if chunk.get("usage"):
            self.usage = usage(chunk["usage"])
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return []
        events: list[Event] = []
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = delta.get("content")
            if text and isinstance(text, str):
                if self.message is None:
                    self._open_message(events)
                events.append(self._text_delta(text))
            calls = delta.get("tool_calls")
            if calls and isinstance(calls, list):
                for call in calls:
                    if isinstance(call, dict):
                        events += self._tool_call(call)
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        return events

    def _add_message(self) -> _OpenItem:
        opened = self._open(message_item(self.draft.ids.new("msg"), [], "in_progress"))
        opened.delta_fields = delta_fields(opened.item["id"], opened.index)
        return opened

    def _open_message(self, events: list[Event]) -> None:
        self.message = self._add_message()
        item = self.message.item
        events.append(
            self.event(
                "response.output_item.added", output_index=self.message.index, item=dict(item)
            )
        )
        events.append(
            self.event(
                "response.content_part.added",
                item_id=item["id"],
                output_index=self.message.index,
                content_index=0,
                part=text_part(""),
            )
        )

    def _text_delta(self, text: str) -> Event:
        message = self.message
        assert message is not None
        message.buffer.append(text)
        self.sequence += 1
        return {
            "type": "response.output_text.delta",
            "sequence_number": self.sequence - 1,
            "item_id": message.item["id"],
            "output_index": message.index,
            "content_index": 0,
            "delta": text,
            "logprobs": [],
        }

    def _tool_call(self, call: dict[str, Any]) -> list[Event]:
        events: list[Event] = []
        if self.message is not None:
            events += self._close(self.message)
        index = call.get("index", len(self.calls))
        function: dict[str, Any] = (
            call["function"] if isinstance(call.get("function"), dict) else {}
        )
        open_call = self.calls.get(index)
        if open_call is None:
            item = function_call_item(
                self.draft.ids.new("fc"),
                call.get("id") or self.draft.ids.new("call"),
                function.get("name") or "",
                "",
                "in_progress",
            )
            open_call = self.calls[index] = self._add(item, events)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            open_call.buffer.append(arguments)
            events.append(
                self.event(
                    "response.function_call_arguments.delta",
                    item_id=open_call.item["id"],
                    output_index=open_call.index,
                    delta=arguments,
                )
            )
        return events

    def _open(self, item: dict[str, Any]) -> _OpenItem:
        opened = _OpenItem(item, len(self.output))
        self.output.append(item)
        self.open.append(opened)
        return opened

    def _add(self, item: dict[str, Any], events: list[Event]) -> _OpenItem:
        opened = self._open(item)
        events.append(
            self.event("response.output_item.added", output_index=opened.index, item=dict(item))
        )
        return opened

    def _done(self, opened: _OpenItem) -> str:
        """Mark `opened` done in the output; its text or arguments, joined."""
        self.open.remove(opened)
        item, joined = opened.item, "".join(opened.buffer)
        item["status"] = "incomplete" if self.incomplete_reason else "completed"
        if item["type"] == "message":
            self.message = None
            item["content"] = [text_part(joined)]
        else:
            item["arguments"] = joined
        return joined

    def _close(self, opened: _OpenItem) -> list[Event]:
        item, index, joined = opened.item, opened.index, self._done(opened)
        events: list[Event] = []
        if item["type"] == "message":
            ids = {"item_id": item["id"], "output_index": index, "content_index": 0}
            events.append(self.event("response.output_text.done", **ids, text=joined, logprobs=[]))
            events.append(self.event("response.content_part.done", **ids, part=item["content"][0]))
        else:
            events.append(
                self.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=joined,
                )
            )
        events.append(self.event("response.output_item.done", output_index=index, item=item))
        return events

    def _close_encoded(self, opened: _OpenItem) -> bytes:
        item = opened.item
        if item["type"] != "message":
            return b"".join([encode_event(event) for event in self._close(opened)])
        joined = self._done(opened)
        self.sequence += 3
        return message_done(self.sequence - 3, opened.index, item["id"], item["status"], joined)

    @property
    def incomplete_reason(self) -> str | None:
        return INCOMPLETE_REASONS.get(self.finish_reason or "")

    def finish(self) -> tuple[dict[str, Any], list[Event]]:
        """The final Response and the events that close the items still open."""
        events: list[Event] = []
        for opened in list(self.open):
            events += self._close(opened)
        return self._final(), events

    def _final(self) -> dict[str, Any]:
        reason = self.incomplete_reason
        status = "incomplete" if reason else "completed"
        return self.draft.response(status, self.output, self.usage, incomplete_reason=reason)

    def terminal(self, final: dict[str, Any]) -> Event:
        return self.event(f"response.{final['status']}", response=final)

    def failed(self, err: GatewayError) -> Event:
        for opened in self.open:
            opened.item["status"] = "incomplete"
        error = {"code": err.code or err.error_type, "message": err.message}
        final = self.draft.response("failed", self.output, self.usage, error=error)
        return self.event("response.failed", response=final)


def _plain_text(chunk: dict[str, Any]) -> str | None:
    """The chunk's text when the chunk is nothing but text (no usage, tool call or end)."""
    choices = chunk.get("choices")
    if type(choices) is not list or not choices or chunk.get("usage"):
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason"):
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or delta.get("tool_calls"):
        return None
    text = delta.get("content")
    return text if type(text) is str and text else None
