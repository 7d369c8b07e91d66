"""The upstream HTTP client (gateway/upstream) against real asyncio servers on 127.0.0.1:
body framings and encodings, keep-alive reuse, stale pooled connections, timeouts, the
pool limit, streams left early, TLS, and no connection left behind."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import ssl
import subprocess
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.upstream import (
    ConnectTimeout,
    HTTPClient,
    InvalidResponse,
    PoolTimeout,
    ReadTimeout,
    ServerDisconnected,
    Timeouts,
)

TIMEOUTS = Timeouts(connect=2, read=2, pool=2)
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Upstream"], Awaitable[None]]


@dataclass
class Upstream:
    """A raw HTTP/1.1 server in the test's loop; `handler` plays one connection."""

    handler: Handler
    port: int = 0
    accepted: int = 0  # connections ever opened
    open: int = 0  # connections open now
    heads: list[bytes] = field(default_factory=list)  # every request head read
    scheme: str = "http"
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v1/chat"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        self.writers.append(writer)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:  # the test's loop is closing: end quietly
            pass
        finally:
            writer.close()
            self.open -= 1

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next request's body (None at the end of the connection)."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        self.heads.append(head)
        length = next(
            int(line.split(b":")[1])
            for line in head.lower().split(b"\r\n")
            if line.startswith(b"content-length:")
        )
        return await reader.readexactly(length)

    async def wait_closed(self, timeout: float = 2.0) -> int:
        deadline = time.monotonic() + timeout
        while self.open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return self.open


@contextlib.asynccontextmanager
async def upstream(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    up = Upstream(handler, scheme="https" if tls else "http")
    server = await asyncio.start_server(up.handle, "127.0.0.1", 0, ssl=tls)
    up.port = server.sockets[0].getsockname()[1]
    try:
        yield up
    finally:
        server.close()
        for writer in up.writers:  # handlers waiting on their reader end now
            writer.close()
        await up.wait_closed()


def answering(*replies: bytes) -> Handler:
    """Answer each request on a connection with the next reply, kept alive, until EOF."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream):
        for reply in replies:
            if await up.read_request(reader) is None:
                return
            writer.write(reply)
            await writer.drain()
        await reader.read()  # keep the connection open until the client closes it

    return handler


def repeating(reply: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream):
        while await up.read_request(reader) is not None:
            writer.write(reply)
            await writer.drain()

    return handler


def reply(body: bytes, *headers: str, status: str = "200 OK") -> bytes:
    lines = [f"HTTP/1.1 {status}", "content-type: application/json", *headers]
    if not any(h.startswith(("transfer-encoding", "connection: close")) for h in headers):
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


OK = reply(b'{"ok": true}')
BODY = b'{"message": "' + b"x" * 5000 + b'"}'


def client(**options: object) -> HTTPClient:
    return HTTPClient(timeouts=options.pop("timeouts", TIMEOUTS), **options)  # type: ignore[arg-type]


async def body_of(http: HTTPClient, url: str) -> bytes:
    response = await http.post(url, b"{}")
    try:
        data = await response.read()
    except BaseException:
        response.close()
        raise
    response.release()
    return data


# -- bodies --------------------------------------------------------------------------------


async def until_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, up: Upstream):
    await up.read_request(reader)
    writer.write(reply(b"", "connection: close") + BODY[:3000])
    await writer.drain()
    await asyncio.sleep(0.02)
    writer.write(BODY[3000:])
    # the body ends when the connection does


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    "handler",
    [
        pytest.param(answering(reply(BODY)), id="content-length"),
        pytest.param(
            answering(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                + chunked(BODY[:10], BODY[10:2000], BODY[2000:])
            ),
            id="chunked",
        ),
        pytest.param(until_close, id="read-until-close"),
        pytest.param(answering(reply(gzip.compress(BODY), "content-encoding: gzip")), id="gzip"),
        pytest.param(
            answering(reply(zlib.compress(BODY), "content-encoding: deflate")), id="deflate-zlib"
        ),
        pytest.param(
            answering(reply(_raw_deflate(BODY), "content-encoding: deflate")), id="deflate-raw"
        ),
        pytest.param(
            answering(
                b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ntransfer-encoding: chunked\r\n\r\n"
                + chunked(*(gzip.compress(BODY)[i : i + 100] for i in range(0, 3000, 100)))
            ),
            id="gzip-chunked",
        ),
    ],
)
async def test_every_body_framing_and_encoding_reads_whole(handler: Handler) -> None:
    http = client()
    async with upstream(handler) as up:
        assert await body_of(http, up.url) == BODY
        assert http.connections_in_use() == 0
    await http.aclose()


async def test_request_head_carries_host_length_headers_and_identity_encoding() -> None:
    http = client(headers={"Authorization": "Bearer k", "content-type": "application/json"})
    async with upstream(answering(OK, OK)) as up:
        await body_of(http, up.url)
        response = await http.post(up.url, b'{"a": 1}', {"Authorization": "Bearer other"})
        await response.read()
        response.release()
        first, second = (head.decode().lower().split("\r\n") for head in up.heads)
        assert first[0] == "post /v1/chat http/1.1"
        assert f"host: 127.0.0.1:{up.port}" in first
        assert {"authorization: bearer k", "accept-encoding: identity", "content-length: 2"} <= set(
            first
        )
        assert "authorization: bearer other" in second and "authorization: bearer k" not in second
    await http.aclose()


@pytest.mark.parametrize("value", ["a\r\nx-injected: 1", "a\nb", "a\0"])
async def test_a_line_break_in_a_header_is_refused(value: str) -> None:
    with pytest.raises(ValueError):
        HTTPClient(timeouts=TIMEOUTS, headers={"x-h": value})
    http = client()
    with pytest.raises(ValueError):
        await http.post("http://127.0.0.1:1/v1", b"", {"x-h": value})


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-encoding: br\r\ncontent-length: 2\r\n\r\nxx", "br"),
        (b"HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 4\r\n\r\nnope", "encoding"),
        (b"NOT HTTP AT ALL\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\ncontent-length: 3\r\n\r\nabc", "malformed"),
    ],
    ids=["unknown-encoding", "bad-gzip", "not-http", "two-lengths"],
)
async def test_an_unreadable_response_is_invalid_and_the_connection_dropped(
    answer: bytes, error: str
) -> None:
    http = client()
    async with upstream(answering(answer)) as up:
        with pytest.raises(InvalidResponse, match=error):
            await body_of(http, up.url)
        assert http.connections_in_use() == 0 and http.idle_connections() == 0
        assert await up.wait_closed() == 0
    await http.aclose()


# -- keep-alive and stale connections ---------------------------------------------------------


async def test_keep_alive_connection_is_reused_for_every_request() -> None:
    http = client()
    async with upstream(repeating(OK)) as up:
        for _ in range(5):
            assert await body_of(http, up.url) == b'{"ok": true}'
        assert up.accepted == 1
        assert (http.connections_in_use(), http.idle_connections()) == (0, 1)
    await http.aclose()


async def test_connection_close_answer_is_not_pooled() -> None:
    http = client()
    async with upstream(repeating(reply(b"{}", "content-length: 2", "connection: close"))) as up:
        await body_of(http, up.url)
        await body_of(http, up.url)
        assert up.accepted == 2 and http.idle_connections() == 0
    await http.aclose()


async def test_pooled_connection_the_upstream_closed_while_idle_is_not_used() -> None:
    async def one_per_connection(reader, writer, up: Upstream) -> None:  # no connection: close
        await up.read_request(reader)
        writer.write(OK)
        await writer.drain()

    http = client()
    async with upstream(one_per_connection) as up:
        await body_of(http, up.url)
        await up.wait_closed()
        await asyncio.sleep(0.05)  # the client's loop sees the close
        assert http.idle_connections() == 0
        assert await body_of(http, up.url) == b'{"ok": true}'
        assert up.accepted == 2
    await http.aclose()


async def test_close_crossing_a_request_on_a_reused_connection_is_retried_once() -> None:
    """The upstream closes an idle connection just as the next request reaches it."""

    async def closes_at_second_request(reader, writer, up: Upstream) -> None:
        await up.read_request(reader)
        writer.write(OK)
        await writer.drain()
        await up.read_request(reader)  # taken in, never answered: the idle-timeout race

    http = client()
    async with upstream(closes_at_second_request) as up:
        await body_of(http, up.url)
        assert await body_of(http, up.url) == b'{"ok": true}'
        assert up.accepted == 2 and len(up.heads) == 3
    await http.aclose()


async def test_no_retry_when_a_fresh_connection_closes_or_the_answer_had_begun() -> None:
    async def closes_at_once(reader, writer, up: Upstream) -> None:
        await up.read_request(reader)

    async def cut_after_first_byte(reader, writer, up: Upstream) -> None:
        await up.read_request(reader)
        writer.write(OK)
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 20")
        await writer.drain()

    http = client()
    async with upstream(closes_at_once) as up:
        with pytest.raises(ServerDisconnected):
            await body_of(http, up.url)
        assert len(up.heads) == 1  # a new connection: not sent twice
    async with upstream(cut_after_first_byte) as up:
        await body_of(http, up.url)
        with pytest.raises(ServerDisconnected):
            await body_of(http, up.url)
        assert len(up.heads) == 2
    assert http.connections_in_use() == 0
    await http.aclose()


# -- streams -------------------------------------------------------------------------------


def stream_until(release: asyncio.Event, first: bytes = b"data: 1\n\n") -> Handler:
    """Send one chunk of an SSE stream, the rest only after `release` is set."""

    async def handler(reader, writer, up: Upstream) -> None:
        while await up.read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
            writer.write(b"transfer-encoding: chunked\r\n\r\n" + chunked(first)[:-5])
            await writer.drain()
            await release.wait()
            writer.write(chunked(b"data: 2\n\n", b"data: [DONE]\n\n"))
            await writer.drain()

    return handler


async def test_stream_chunks_arrive_as_they_are_sent() -> None:
    release = asyncio.Event()
    http = client()
    async with upstream(stream_until(release)) as up:
        response = await http.post(up.url, b"{}")
        assert response.content_type == "text/event-stream"
        chunks = aiter(response)
        assert await anext(chunks) == b"data: 1\n\n"  # before the rest was even sent
        release.set()
        rest = b"".join([chunk async for chunk in chunks])
        assert rest == b"data: 2\n\ndata: [DONE]\n\n"
        response.release()
        assert http.idle_connections() == 1 and up.accepted == 1
    await http.aclose()


@pytest.mark.parametrize("leave", ["release", "close"])
async def test_stream_left_early_closes_its_connection_instead_of_pooling_it(leave: str) -> None:
    release = asyncio.Event()
    http = client()
    async with upstream(stream_until(release)) as up:
        response = await http.post(up.url, b"{}")
        await anext(aiter(response))
        getattr(response, leave)()
        assert (http.connections_in_use(), http.idle_connections()) == (0, 0)
        release.set()
        assert await up.wait_closed() == 0  # the handler saw the client hang up
        assert await body_of(http, up.url) == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
        assert up.accepted == 2
    await http.aclose()


async def test_a_slow_consumer_pauses_the_upstream() -> None:
    sent = 0

    async def endless(reader, writer, up: Upstream) -> None:
        nonlocal sent
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        while True:
            writer.write(chunked(b"x" * 16384)[:-5])
            sent += 16384
            await writer.drain()

    http = client()
    async with upstream(endless) as up:
        response = await http.post(up.url, b"{}")
        await anext(aiter(response))
        await asyncio.sleep(0.3)  # the consumer reads nothing more for a while
        assert sent < 8 * 1024 * 1024, sent  # client buffer + socket buffers, not everything
        before = sent
        for _ in range(20):
            await anext(aiter(response))
        assert sent > before  # reading again lets the upstream go on
        response.close()
        assert await up.wait_closed() == 0
    await http.aclose()


# -- timeouts and the pool -----------------------------------------------------------------


async def stall(reader, writer, up: Upstream) -> None:
    await up.read_request(reader)
    await reader.read()


async def test_read_timeout_before_the_head() -> None:
    http = client(timeouts=Timeouts(connect=2, read=0.2, pool=2))
    async with upstream(stall) as up:
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            await http.post(up.url, b"{}")
        assert 0.15 < time.monotonic() - started < 1.5
        assert await up.wait_closed() == 0 and http.connections_in_use() == 0
    await http.aclose()


async def test_read_timeout_counts_per_read_not_for_the_whole_body() -> None:
    async def trickle(reader, writer, up: Upstream) -> None:
        await up.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        for _ in range(8):  # 0.8 s in all, 0.1 s apart: within a 0.3 s read timeout
            writer.write(chunked(b"tick")[:-5])
            await writer.drain()
            await asyncio.sleep(0.1)
        await reader.read()  # then stalls

    http = client(timeouts=Timeouts(connect=2, read=0.3, pool=2))
    async with upstream(trickle) as up:
        response = await http.post(up.url, b"{}")
        received = b""
        with pytest.raises(ReadTimeout):
            async for chunk in response:
                received += chunk
        assert received == b"tick" * 8
        response.close()
        assert await up.wait_closed() == 0
    await http.aclose()


async def test_connect_timeout_covers_the_tls_handshake(tmp_path: Path) -> None:
    async def silent(reader, writer, up: Upstream) -> None:  # takes TCP, never speaks TLS
        await reader.read()

    http = client(timeouts=Timeouts(connect=0.2, read=2, pool=2))
    async with upstream(silent) as up:
        started = time.monotonic()
        with pytest.raises(ConnectTimeout):
            await http.post(up.url.replace("http:", "https:"), b"{}")
        assert time.monotonic() - started < 1.5
        assert http.connections_in_use() == 0
    await http.aclose()


async def test_pool_limit_holds_and_waiters_get_connections_in_turn() -> None:
    in_flight = peak = 0

    async def slow(reader, writer, up: Upstream) -> None:
        nonlocal in_flight, peak
        while await up.read_request(reader) is not None:
            in_flight += 1
            peak = max(peak, in_flight)
            await asyncio.sleep(0.02)
            in_flight -= 1
            writer.write(OK)
            await writer.drain()

    http = client(max_connections=2)
    async with upstream(slow) as up:
        bodies = await asyncio.gather(*(body_of(http, up.url) for _ in range(12)))
        assert bodies == [b'{"ok": true}'] * 12
        assert up.accepted == 2 and peak == 2
        assert (http.connections_in_use(), http.idle_connections()) == (0, 2)
    await http.aclose()


async def test_pool_times_out_when_all_stay_busy_and_a_cancelled_waiter_leaks_nothing() -> None:
    release = asyncio.Event()
    http = client(max_connections=1, timeouts=Timeouts(connect=2, read=5, pool=0.2))
    async with upstream(stream_until(release)) as up:
        held = await http.post(up.url, b"{}")
        started = time.monotonic()
        with pytest.raises(PoolTimeout):
            await http.post(up.url, b"{}")
        assert 0.15 < time.monotonic() - started < 1.5
        waiting = asyncio.create_task(body_of(http, up.url))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        assert b"[DONE]" in await held.read()
        held.release()
        assert await body_of(http, up.url) == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
        assert up.accepted == 1 and http.connections_in_use() == 0
    await http.aclose()


async def test_a_cancelled_request_drops_its_connection() -> None:
    http = client()
    async with upstream(stall) as up:
        task = asyncio.create_task(http.post(up.url, b"{}"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert http.connections_in_use() == 0 and http.idle_connections() == 0
        assert await up.wait_closed() == 0
    await http.aclose()


async def test_connection_refused_is_an_oserror_and_leaves_nothing() -> None:
    async with upstream(stall) as up:
        url = up.url
    http = client()
    with pytest.raises(OSError):
        await body_of(http, url)
    assert http.connections_in_use() == 0
    await http.aclose()


async def test_no_connection_is_left_open_after_a_mix_of_outcomes() -> None:
    release = asyncio.Event()
    release.set()
    http = client(max_connections=4, timeouts=Timeouts(connect=2, read=0.3, pool=2))
    async with (
        upstream(repeating(OK)) as ok,
        upstream(stream_until(release)) as streams,
        upstream(stall) as stalls,
    ):

        async def one(i: int) -> None:
            with contextlib.suppress(ReadTimeout):
                if i % 3 == 0:
                    await body_of(http, ok.url)
                elif i % 3 == 1:
                    response = await http.post(streams.url, b"{}")
                    await anext(aiter(response))
                    (response.release if i % 2 else response.close)()
                else:
                    await body_of(http, stalls.url)

        await asyncio.gather(*(one(i) for i in range(30)))
        assert http.connections_in_use() == 0
        await http.aclose()
        for up in (ok, streams, stalls):
            assert await up.wait_closed() == 0


# -- TLS -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_verifies_the_upstream_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    async with upstream(repeating(OK), tls=server_tls) as up:
        untrusting = client()  # the system's CAs: a self-signed certificate is refused
        with pytest.raises(ssl.SSLCertVerificationError):
            await body_of(untrusting, up.url)
        await untrusting.aclose()
        trusting = client(tls=ssl.create_default_context(cafile=str(cert)))
        for _ in range(3):
            assert await body_of(trusting, up.url) == b'{"ok": true}'
        assert up.accepted == 1  # three requests on one connection (the refused one never got in)
        await trusting.aclose()
        assert await up.wait_closed() == 0
