"""SSEDecoder: the same events whatever the reads, its one-event fast path included."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.streaming.sse import SSEDecoder


def decoded(reads: list[bytes]) -> list[bytes]:
    decoder = SSEDecoder()
    events = [event for read in reads for event in decoder.feed(read)]
    return events + decoder.flush()


def test_whole_events_one_per_read() -> None:
    reads = [b'data: {"a":1}\n\n', b"data: [DONE]\n\n"]
    assert decoded(reads) == [b'{"a":1}', b"[DONE]"]


def test_reads_the_fast_path_must_leave_to_the_full_parser() -> None:
    assert decoded([b"data:x\n\n"]) == [b"x"]  # no space after the colon
    assert decoded([b"data: a\ndata: b\n\n"]) == [b"a\nb"]  # a multi-line data field
    assert decoded([b"data: x\r\n\r\n"]) == [b"x"]  # CRLF line ends
    assert decoded([b"data: a\rdata: b\n\n"]) == [b"a\nb"]  # a bare CR ends a line
    assert decoded([b": keep-alive\n\n", b"event: x\ndata: y\n\n"]) == [b"y"]
    assert decoded([b"data: par", b"t\n\n"]) == [b"part"]  # an event split over reads
    assert decoded([b"data: a\n", b"\ndata: b\n\n"]) == [b"a", b"b"]  # its blank line late


lines = st.sampled_from([b"data: x", b"data:y", b'data: {"k": 1}', b": c", b"event: e", b""])
ends = st.sampled_from([b"\n", b"\r\n", b"\r"])


@given(st.lists(st.tuples(lines, ends), max_size=12), st.lists(st.integers(0, 200), max_size=6))
def test_any_split_of_a_stream_gives_the_events_of_reading_it_whole(
    parts: list[tuple[bytes, bytes]], cuts: list[int]
) -> None:
    stream = b"".join(line + end for line, end in parts)
    points = sorted({min(c, len(stream)) for c in cuts})
    reads = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole = SSEDecoder()
    expected = whole.feed(stream) + whole.flush()
    assert decoded(reads) == expected


def test_a_crlf_split_between_two_reads_is_one_line_end() -> None:
    assert decoded([b"data: a\r", b"\ndata: b\n\n"]) == [b"a\nb"]
    assert decoded([b"data: a\r"]) == [b"a"]  # a bare CR at the very end still ends it
