"""Minimal SSE codec: only what OpenAI-style streams use (`data:` lines, blank-line ends)."""

from __future__ import annotations

from typing import Any

import orjson

DONE = b"[DONE]"


def encode_data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def encode_json(obj: Any) -> bytes:
    return encode_data(orjson.dumps(obj))


DONE_EVENT = encode_data(DONE)


class SSEDecoder:
    """Feed raw bytes, get the `data` payload of each complete event.

    Multi-line data fields are joined with newlines as the SSE spec says; comments,
    `event:`, `id:` and `retry:` fields are dropped (OpenAI-style streams carry
    everything in `data`).
    """

    __slots__ = ("_buffer", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[bytes]:
        if (  # the usual read: one whole `data: ...` event, nothing left from the last one
            not self._buffer
            and not self._data
            and chunk.startswith(b"data: ")
            and chunk.find(b"\n") == len(chunk) - 2
            and chunk.endswith(b"\n\n")
            and b"\r" not in chunk
        ):
            return [chunk[6:-2]]
        events: list[bytes] = []
        buffer = self._buffer + chunk
        held = b""
        if b"\r" in buffer:
            if buffer.endswith(b"\r"):  # a CRLF may be split over two reads: wait for the LF
                buffer, held = buffer[:-1], b"\r"
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buffer.split(b"\n")
        self._buffer = rest + held
        for line in lines:
            if not line:
                if self._data:
                    events.append(b"\n".join(self._data))
                    self._data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                self._data.append(value[1:] if value.startswith(b" ") else value)
        return events

    def flush(self) -> list[bytes]:
        """Events left when the byte stream ends without a final blank line."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._buffer = b""
        return events
