"""What the Responses API's translation costs: CPU per request, in-process, against the
same request as a Chat Completions call.

The app is driven through ASGI directly (no sockets) with the mock provider (no upstream),
so the figures are the gateway's own work: parsing, the pipeline, rendering, the store
write. Chat and Responses runs alternate (ABAB…) so load on the machine hits both alike.

    .venv/bin/python benchmarks/bench_responses.py [--requests 2000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

import orjson

from gateway.app import create_app
from gateway.config import load_config_text
from gateway.ingress.responses.parse import input_items
from gateway.ingress.responses.render import Draft, response_object
from gateway.ingress.responses.store import MemoryResponseStore, StoredResponse

CONFIG = """
logging: {level: warning, access_log: false}
providers:
  mock: {kind: mock, mock: {chunks: 20}}
models:
  bench: {deployments: [{provider: mock, model: bench-model}]}
"""
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "chat": (
        "/v1/chat/completions",
        {"model": "bench", "messages": [{"role": "user", "content": "hello there"}]},
    ),
    "responses": ("/v1/responses", {"model": "bench", "input": "hello there"}),
    "responses unstored": (
        "/v1/responses",
        {"model": "bench", "input": "hello there", "store": False},
    ),
    "chat stream": (
        "/v1/chat/completions",
        {
            "model": "bench",
            "messages": [{"role": "user", "content": "hello there"}],
            "stream": True,
        },
    ),
    "responses stream": (
        "/v1/responses",
        {"model": "bench", "input": "hello there", "stream": True},
    ),
    "resp. stream unstored": (
        "/v1/responses",
        {"model": "bench", "input": "hello there", "stream": True, "store": False},
    ),
    # A Responses stream always asks its upstream for usage (response.completed carries
    # it): one more upstream chunk. This row is the same chat stream with that chunk.
    "chat stream usage": (
        "/v1/chat/completions",
        {
            "model": "bench",
            "messages": [{"role": "user", "content": "hello there"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    ),
}


async def call(
    app: Any, path: str, raw: bytes, extra_headers: list[tuple[bytes, bytes]] | None = None
) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8080),
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(raw)).encode()),
            *(extra_headers or []),
        ],
    }
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": raw, "more_body": False}
        await asyncio.sleep(3600)  # the client never leaves
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def cpu_per_request(app: Any, case: str, requests: int) -> float:
    path, body = CASES[case]
    raw = orjson.dumps(body)
    gc.collect()  # a full collection the previous case made due is not billed to this one
    start = time.process_time()
    for _ in range(requests):
        if await call(app, path, raw) != 200:
            raise RuntimeError(f"{case}: not 200")
        # One loop turn, as a server gives between requests: the request's cancelled
        # disconnect watcher ends here, billed to its own case, not to a later one.
        await asyncio.sleep(0)
    return (time.process_time() - start) / requests * 1e6


async def store_write(requests: int) -> tuple[float, float]:
    """CPU per `store: true` write to the memory state alone (the `responses` case's
    record): new ids, then the same ids again."""
    body = CASES["responses"][1]
    chat = {
        "choices": [{"message": {"role": "assistant", "content": body["input"]}}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 2},
    }
    records = []
    for _ in range(requests):
        draft = Draft(body)
        response = response_object(draft, chat)
        records.append(StoredResponse(response, input_items(body, draft.ids), []))
    store = MemoryResponseStore()
    figures = []
    for _ in range(2):  # new keys, then the same keys again
        gc.collect()
        start = time.process_time()
        for record in records:
            await store.put("key", record)
        figures.append((time.process_time() - start) / requests * 1e6)
    return figures[0], figures[1]


async def main(requests: int, rounds: int) -> None:
    app = create_app(load_config_text(CONFIG))
    figures: dict[str, list[float]] = {case: [] for case in CASES}
    async with app.router.lifespan_context(app):
        for case in CASES:  # warm up
            await cpu_per_request(app, case, 200)
        for _ in range(rounds):
            for case in CASES:
                figures[case].append(await cpu_per_request(app, case, requests))
    print(
        f"CPU per request, in-process, mock provider ({rounds} alternating rounds of "
        f"{requests}; median)"
    )
    median = {case: statistics.median(values) for case, values in figures.items()}
    for case, value in median.items():
        print(
            f"  {case:21} {value:7.1f} us   (runs: {', '.join(f'{v:.0f}' for v in figures[case])})"
        )
    pairs = (
        ("chat", "responses"),
        ("chat", "responses unstored"),
        ("chat stream", "responses stream"),
        ("chat stream", "resp. stream unstored"),
        ("chat stream usage", "responses stream"),
        ("chat stream usage", "resp. stream unstored"),
    )
    for chat, responses in pairs:
        print(f"  {responses:21} / {chat:17}: x{median[responses] / median[chat]:.3f}")
    fresh, again = await store_write(requests * rounds)
    print(
        f"  store write alone (memory state, encode + put): {fresh:.1f} us for new ids, "
        f"{again:.1f} us for the same ids again"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
