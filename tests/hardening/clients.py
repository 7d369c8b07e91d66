"""Raw asyncio HTTP clients that misbehave on purpose: leave mid-stream, read slowly."""

from __future__ import annotations

import asyncio
import socket
import time

import orjson


def post_bytes(path: str, body: object, headers: dict[str, str] | None = None) -> bytes:
    data = orjson.dumps(body)
    lines = [f"POST {path} HTTP/1.1", "host: gateway", "content-type: application/json"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    lines.append(f"content-length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


async def leave_after_events(
    port: int, request: bytes, events: int, *, abort: bool
) -> tuple[int, float]:
    """Read `events` SSE events, then vanish (RST when `abort`, else FIN).

    Returns the events seen and when the client left (time.monotonic()).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    seen = 0
    buffer = b""
    while seen < events:
        data = await asyncio.wait_for(reader.read(65536), 10)
        if not data:
            break
        buffer += data
        seen = buffer.count(b"data:")
    if abort:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        writer.transport.abort()
    else:
        writer.close()
    return seen, time.monotonic()


async def slow_reader(
    port: int, request: bytes, *, seconds: float, bytes_per_read: int = 256
) -> int:
    """Take only a trickle of the reply for `seconds` (a tiny receive buffer), then leave."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, request)
    received = 0
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            received += len(await loop.sock_recv(sock, bytes_per_read))
            await asyncio.sleep(0.05)
    finally:
        sock.close()
    return received


def exchange(port: int, request: bytes, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes (ask for `connection: close`), read to EOF; status, headers, body.

    A chunked body is returned as it came on the wire (tests look for markers in it).
    """
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def raw_post(path: str, body: bytes, header_lines: list[bytes]) -> bytes:
    """A POST with exactly these header lines (CR/LF and duplicates included)."""
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"host: gateway", b"connection: close"]
    head += header_lines
    if not any(
        h.lower().startswith((b"content-length", b"transfer-encoding")) for h in header_lines
    ):
        head.append(b"content-length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body
