"""Responses stream events as SSE bytes: `event: <type>` and `data: <json>` lines.

`encode_event` writes any event dict. The templates write the events of a text reply
(nearly every event of a stream) with the variable parts spliced in, byte for byte what
`encode_event` writes for the same dict: measured in benchmarks/bench_responses.py, building
each event's dict and dumping it cost more than the rest of the translation.
tests/ingress/responses/test_translation.py checks that both give the same bytes.
"""

from __future__ import annotations

from typing import Any

import orjson

EVENT_TYPES = (
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
)
_HEADS = {kind: f"event: {kind}\ndata: ".encode() for kind in EVENT_TYPES}


def _template(kind: str, fields: bytes) -> bytes:
    return _HEADS[kind] + b'{"type":"%s","sequence_number":%%d,%s}\n\n' % (kind.encode(), fields)


_TEXT_DELTA = _template("response.output_text.delta", b'%s"delta":%s,"logprobs":[]')
_DELTA_FIELDS = b'"item_id":%s,"output_index":%d,"content_index":0,'
_MESSAGE_ADDED = _template(
    "response.output_item.added",
    b'"output_index":%d,"item":{"type":"message","id":%s,"status":"in_progress",'
    b'"role":"assistant","content":[]}',
) + _template(
    "response.content_part.added",
    b'"item_id":%s,"output_index":%d,"content_index":0,'
    b'"part":{"type":"output_text","text":"","annotations":[]}',
)
_MESSAGE_DONE = (
    _template(
        "response.output_text.done",
        b'"item_id":%s,"output_index":%d,"content_index":0,"text":%s,"logprobs":[]',
    )
    + _template(
        "response.content_part.done",
        b'"item_id":%s,"output_index":%d,"content_index":0,'
        b'"part":{"type":"output_text","text":%s,"annotations":[]}',
    )
    + _template(
        "response.output_item.done",
        b'"output_index":%d,"item":{"type":"message","id":%s,"status":"%s","role":"assistant",'
        b'"content":[{"type":"output_text","text":%s,"annotations":[]}]}',
    )
)
_WITH_RESPONSE = b'%s{"type":"%s","sequence_number":%d,"response":%s}\n\n'


def encode_event(event: dict[str, Any]) -> bytes:
    kind = event["type"]
    head = _HEADS.get(kind) if isinstance(kind, str) else None
    if head is None:  # a native upstream's other events: its type on one line
        shown = str(kind).replace("\r", " ").replace("\n", " ")
        head = f"event: {shown}\ndata: ".encode()
    return head + orjson.dumps(event) + b"\n\n"


def with_response(kind: str, sequence: int, response: bytes) -> bytes:
    """An event whose only field is a Response, given already encoded."""
    return _WITH_RESPONSE % (_HEADS[kind], kind.encode(), sequence, response)


def delta_fields(item_id: str, index: int) -> bytes:
    """What every text delta of one message carries before its text."""
    return _DELTA_FIELDS % (orjson.dumps(item_id), index)


def text_delta(sequence: int, fields: bytes, text: str) -> bytes:
    return _TEXT_DELTA % (sequence, fields, orjson.dumps(text))


def message_added(sequence: int, index: int, item_id: str) -> bytes:
    """`output_item.added` and `content_part.added` for a new message (two numbers)."""
    encoded_id = orjson.dumps(item_id)
    return _MESSAGE_ADDED % (sequence, index, encoded_id, sequence + 1, encoded_id, index)


def message_done(sequence: int, index: int, item_id: str, status: str, text: str) -> bytes:
    """`output_text.done`, `content_part.done` and `output_item.done` (three numbers)."""
    encoded_id, encoded_text = orjson.dumps(item_id), orjson.dumps(text)
    return _MESSAGE_DONE % (
        *(sequence, encoded_id, index, encoded_text),
        *(sequence + 1, encoded_id, index, encoded_text),
        *(sequence + 2, index, encoded_id, status.encode(), encoded_text),
    )
