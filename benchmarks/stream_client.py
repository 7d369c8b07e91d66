"""A light streaming load client: N concurrent SSE chat completions, timed.

Raw asyncio protocol on uvloop with the httptools response parser, so that it is not
the bottleneck (``cpu_util`` in its report says how busy it was). It first opens
``--concurrency`` keep-alive connections (as a pooled SDK client would), then each
connection runs ``--rounds`` streams one after another (reconnecting if the server closed
it). The connections start together, or evenly spread over ``--ramp-ms``. Per stream it records:
  ttfb   seconds from writing the request to the first body byte (the first SSE event)
  total  seconds from writing the request to the end of the response
A stream is complete when it answered 200 and its last event is the format's final one:
``data: [DONE]`` (chat), ``response.completed`` (``--responses``: POST /v1/responses) or
``message_stop`` (``--path /v1/messages``).
Prints one JSON object on stdout.

    python benchmarks/stream_client.py --port 8080 --concurrency 100 --rounds 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
from dataclasses import asdict, dataclass, field
from typing import cast

import httptools

BODY = {
    "model": "bench",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
RESPONSES_BODY = {"model": "bench", "input": "hi", "stream": True}
CHAT_END = b"data: [DONE]"
RESPONSES_END = b"event: response.completed"
MESSAGES_END = b"event: message_stop"
MESSAGES_BODY = {
    "model": "bench",
    "max_tokens": 64,
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
}


@dataclass
class Outcome:
    ttfb: float | None = None
    total: float | None = None
    status: int = 0
    events: int = 0
    complete: bool = False
    error: str | None = None


@dataclass
class Report:
    concurrency: int
    rounds: int
    wall_s: float
    cpu_util: float
    completed: int
    started: int
    events_per_stream: float
    ttfb: list[float] = field(default_factory=list)
    total: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


def build_request(host: str, port: int, path: str, api_key: str | None, body: dict) -> bytes:
    payload = json.dumps(body).encode()
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: text/event-stream",
        f"Content-Length: {len(payload)}",
    ]
    if api_key:
        lines.append(f"Authorization: Bearer {api_key}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


class Connection(asyncio.Protocol):
    """One keep-alive connection that runs timed requests one at a time."""

    end = CHAT_END  # how a complete stream's last event starts (set per run)

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._reset(None)

    def _reset(self, fut: asyncio.Future[Outcome] | None) -> None:
        self.out = Outcome()
        self.t0 = 0.0
        self.chunks: list[bytes] = []
        self.done = fut

    async def request(self, data: bytes, timeout: float) -> Outcome:
        assert self.transport is not None and self.done is None
        fut: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._reset(fut)
        self.t0 = time.perf_counter()
        self.transport.write(data)
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            self.transport.close()
            return Outcome(error="timeout")
        finally:
            self.done = None

    # asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._resolve(f"parse error: {exc}")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._resolve("connection closed mid-response")

    # httptools callbacks
    def on_headers_complete(self) -> None:
        self.out.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if self.out.ttfb is None:
            self.out.ttfb = time.perf_counter() - self.t0
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.out.total = time.perf_counter() - self.t0
        body = b"".join(self.chunks)
        self.out.events = body.count(b"data: ")
        last = body.rstrip().rsplit(b"\n\n", 1)[-1]
        self.out.complete = self.out.status == 200 and last.startswith(self.end)
        if not self.out.complete:
            self.out.error = f"status {self.out.status}" if self.out.status != 200 else "no [DONE]"
        if not self.parser.should_keep_alive():
            self.close()
        self._resolve(None)

    def _resolve(self, error: str | None) -> None:
        if self.done is None or self.done.done():
            return
        if error and self.out.error is None:
            self.out.error = error
        self.done.set_result(self.out)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


async def connect(host: str, port: int, timeout: float) -> Connection:
    loop = asyncio.get_running_loop()
    _, conn = await asyncio.wait_for(loop.create_connection(Connection, host, port), timeout)
    return conn


async def run(args: argparse.Namespace) -> Report:
    body = {**(RESPONSES_BODY if args.responses else BODY), "model": args.model}
    path = "/v1/responses" if args.responses else args.path
    Connection.end = RESPONSES_END if args.responses else CHAT_END
    if path.endswith("/messages"):  # Anthropic Messages: max_tokens, no stream_options
        body = {**MESSAGES_BODY, "model": args.model}
        Connection.end = MESSAGES_END
    request = build_request(args.host, args.port, path, args.api_key, body)
    outcomes: list[Outcome] = []
    conns = await asyncio.gather(
        *(connect(args.host, args.port, args.timeout) for _ in range(args.concurrency))
    )

    async def worker(i: int, conn: Connection) -> None:
        await asyncio.sleep(args.ramp_ms / 1000 * i / args.concurrency)
        for _ in range(args.rounds):
            try:
                if conn.closed:
                    conn = await connect(args.host, args.port, args.timeout)
                outcomes.append(await conn.request(request, args.timeout))
            except (OSError, TimeoutError) as exc:
                outcomes.append(Outcome(error=type(exc).__name__))
        conn.close()

    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(worker(i, c) for i, c in enumerate(conns)))
    wall, cpu = time.perf_counter() - t0, _cpu_seconds() - cpu0
    return summarize(outcomes, args.concurrency, args.rounds, wall, cpu)


def summarize(
    outcomes: list[Outcome], concurrency: int, rounds: int, wall: float, cpu: float
) -> Report:
    ok = [o for o in outcomes if o.complete]
    errors: dict[str, int] = {}
    for o in outcomes:
        if o.error:
            errors[o.error] = errors.get(o.error, 0) + 1
    return Report(
        concurrency=concurrency,
        rounds=rounds,
        wall_s=wall,
        cpu_util=cpu / wall if wall else 0.0,
        completed=len(ok),
        started=len(outcomes),
        events_per_stream=sum(o.events for o in ok) / len(ok) if ok else 0.0,
        ttfb=[o.ttfb for o in ok if o.ttfb is not None],
        total=[o.total for o in ok if o.total is not None],
        errors=errors,
    )


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--path", default="/v1/chat/completions")
    ap.add_argument("--model", default="bench")
    ap.add_argument("--responses", action="store_true", help="stream POST /v1/responses")
    ap.add_argument("--api-key", default=None)
    ap.add_argument("--concurrency", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=60.0, help="per stream, seconds")
    ap.add_argument(
        "--ramp-ms", type=float, default=0.0, help="spread the first requests over this window"
    )
    args = ap.parse_args(argv)
    try:
        import uvloop

        report = uvloop.run(run(args))
    except ImportError:
        report = asyncio.run(run(args))
    print(json.dumps(asdict(report)))


if __name__ == "__main__":
    main()
