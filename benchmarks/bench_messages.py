"""The Anthropic Messages rows of run.py: POST /v1/messages through the gateway, translated
to the OpenAI-compatible upstream and passed through to an Anthropic-native one, next to
Chat Completions through the same gateway in the same run.

Besides RPS and latency it reports the gateway's own CPU time per request (utime + stime
of its process over the run, from /proc, divided by the requests served): the cost of
translation is that figure's ratio to Chat Completions (target: at most x1.15).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from common import (
    CHAT_BODY,
    CHAT_PATH,
    CPU_LOAD,
    Service,
    format_table,
    percentile,
    run_stream_client,
    run_wrk,
    write_wrk_script,
)

MESSAGES_PATH = "/v1/messages"
MESSAGES_BODY = {"model": "bench", "max_tokens": 64, "messages": CHAT_BODY["messages"]}
# (row name, path, model): the baseline first
TARGETS = (
    ("chat", CHAT_PATH, "bench"),
    ("messages->openai", MESSAGES_PATH, "bench"),
    ("messages->anthropic", MESSAGES_PATH, "bench-native"),
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def native_overrides(upstream_port: int) -> dict[str, Any]:
    """Gateway config additions: an Anthropic-native deployment on the mock upstream."""
    return {
        "providers": {
            "native": {
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key": "${BENCH_UPSTREAM_KEY:-sk-bench}",
                "max_connections": 1000,
            }
        },
        "models": {"bench-native": {"deployments": [{"provider": "native", "model": "m"}]}},
    }


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _ratio(value: float, base: float) -> str:
    return f"x{value / base:.2f}" if base else "-"


def bench_messages(
    gw: Service, connections: tuple[int, ...], wrk_s: float, warmup_s: float, tmp: Path
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows: list[list[object]] = []
    agent_chat, agent_messages = agent_request()
    shapes = {"tiny": (CHAT_BODY, MESSAGES_BODY), "agent": (agent_chat, agent_messages)}
    for shape, (chat_body, messages_body) in shapes.items():
        for conns in connections:
            base_cpu = 0.0
            for name, path, model in TARGETS:
                body = chat_body if path == CHAT_PATH else messages_body
                script = write_wrk_script(tmp / f"{name}.lua", {**body, "model": model})
                url = f"http://127.0.0.1:{gw.port}{path}"
                run_wrk(url, conns, warmup_s, script)
                before = cpu_seconds(gw.pid)
                r = run_wrk(url, conns, wrk_s, script)
                cpu_us = (cpu_seconds(gw.pid) - before) / max(r.requests, 1) * 1e6
                base_cpu = base_cpu or cpu_us
                results[f"{shape}/{name}@{conns}"] = {
                    "rps": r.rps,
                    "p50_ms": r.p50_ms,
                    "cpu_us": cpu_us,
                }
                row = [shape, conns, name, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}"]
                rows.append([*row, f"{cpu_us:.0f}", _ratio(cpu_us, base_cpu), r.errors])
    print(f"\n== Messages, non-streaming (wrk, {wrk_s:g} s per row, CPU {CPU_LOAD})")
    headers = ["request", "conns", "target", "RPS", "p50 ms", "p99 ms", "gw CPU us/req"]
    print(format_table([*headers, "vs chat", "errors"], rows))
    return results


def bench_messages_stream(
    gw: Service, streams: tuple[int, ...], rounds: int, ramp_ms: float
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows: list[list[object]] = []
    for n in streams:
        base_cpu = 0.0
        for name, path, model in TARGETS:
            run_stream_client(gw.port, n, 1, ramp_ms=ramp_ms, path=path, model=model)
            before = cpu_seconds(gw.pid)
            report = run_stream_client(gw.port, n, rounds, ramp_ms=ramp_ms, path=path, model=model)
            cpu_ms = (cpu_seconds(gw.pid) - before) / max(report["completed"], 1) * 1e3
            base_cpu = base_cpu or cpu_ms
            ttfb = [x * 1000 for x in report["ttfb"]]
            total = [x * 1000 for x in report["total"]]
            results[f"{name}@{n}"] = {"completed": report["completed"], "cpu_ms": cpu_ms}
            done = f"{report['completed']}/{report['started']}"
            figures = [percentile(ttfb, 50), percentile(total, 50), percentile(total, 99)]
            row = [n, name, done, *(f"{x:.2f}" for x in figures)]
            rows.append([*row, f"{cpu_ms:.2f}", _ratio(cpu_ms, base_cpu)])
    print(f"\n== Messages, streaming ({rounds} stream(s) per connection)")
    headers = ["streams", "target", "done", "TTFB p50", "total p50", "total p99"]
    print(format_table([*headers, "gw CPU ms/stream", "vs chat"], rows))
    return results


# -- in-process: the translation's CPU cost alone ------------------------------------------
# The rows above run on shared cores; this measures CPU time (process_time) per request in
# one process, the gateway app called directly over ASGI with the mock provider, chat and
# Messages alternating round by round, for a tiny request and an agent-shaped one.

MOCK_CONFIG = """
logging: {level: warning, access_log: false}
providers:
  mock: {kind: mock, mock: {mode: fixed, chunks: 5}}
models:
  bench: {deployments: [{provider: mock, model: bench}]}
"""


def agent_request() -> tuple[dict[str, Any], dict[str, Any]]:
    """The same agent turn as Chat Completions and as Messages: an 8 KB system prompt,
    24 tools, an earlier turn of two tool calls and their results."""
    schema = {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}
    names = [f"tool_{i:02d}" for i in range(24)]
    system = "You are a coding agent working in a repository. " * 170
    ask = "Read a.py and b.py"
    chat_tools = [
        {"type": "function", "function": {"name": n, "description": "d" * 80, "parameters": schema}}
        for n in names
    ]
    calls = [
        {
            "id": f"c{i}",
            "type": "function",
            "function": {"name": "tool_00", "arguments": '{"path":"/a"}'},
        }
        for i in range(2)
    ]
    chat = {
        "model": "bench",
        "max_tokens": 512,
        "tools": chat_tools,
        "messages": [
            {"role": "system", "content": system},
            {"role": "user", "content": ask},
            {"role": "assistant", "content": "Reading.", "tool_calls": calls},
            *(
                {"role": "tool", "tool_call_id": f"c{i}", "content": "print(1)\n" * 20}
                for i in range(2)
            ),
            {"role": "user", "content": "Now fix the bug."},
        ],
    }
    uses = [
        {"type": "tool_use", "id": f"c{i}", "name": "tool_00", "input": {"path": "/a"}}
        for i in range(2)
    ]
    results = [
        {"type": "tool_result", "tool_use_id": f"c{i}", "content": "print(1)\n" * 20}
        for i in range(2)
    ]
    messages = {
        "model": "bench",
        "max_tokens": 512,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": n, "description": "d" * 80, "input_schema": schema} for n in names],
        "messages": [
            {"role": "user", "content": ask},
            {"role": "assistant", "content": [{"type": "text", "text": "Reading."}, *uses]},
            {"role": "user", "content": [*results, {"type": "text", "text": "Now fix the bug."}]},
        ],
    }
    return chat, messages


async def _call(app: Any, path: str, body: bytes) -> int:
    import asyncio

    done = asyncio.Event()
    pending = [{"type": "http.request", "body": body, "more_body": False}]
    size = 0

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal size
        size += len(message.get("body", b""))
        if message["type"] == "http.response.body" and not message.get("more_body"):
            done.set()

    scope = {
        "type": "http",
        "method": "POST",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
    }
    await app(scope, receive, send)
    return size


async def _inprocess(rounds: int, n: int) -> list[list[object]]:
    import time

    import orjson

    from gateway.app import create_app
    from gateway.config import load_config_text

    app = create_app(load_config_text(MOCK_CONFIG))
    tiny_chat = {**CHAT_BODY, "max_tokens": 64}
    shapes = {"tiny": (tiny_chat, MESSAGES_BODY), "agent": agent_request()}
    rows: list[list[object]] = []
    async with app.router.lifespan_context(app):
        for shape, (chat, messages) in shapes.items():
            for stream in (False, True):
                bodies = {
                    "chat": (CHAT_PATH, orjson.dumps({**chat, "stream": stream})),
                    "messages": (MESSAGES_PATH, orjson.dumps({**messages, "stream": stream})),
                }
                best = {name: float("inf") for name in bodies}
                for _ in range(rounds):
                    for name, (path, raw) in bodies.items():
                        start = time.process_time()
                        for _ in range(n):
                            await _call(app, path, raw)
                        best[name] = min(best[name], (time.process_time() - start) / n)
                chat_us, msg_us = best["chat"] * 1e6, best["messages"] * 1e6
                kind = "stream" if stream else "json"
                rows.append(
                    [shape, kind, f"{chat_us:.0f}", f"{msg_us:.0f}", _ratio(msg_us, chat_us)]
                )
    return rows


def main() -> None:
    import argparse
    import asyncio

    ap = argparse.ArgumentParser(description="In-process CPU per request: Messages vs chat.")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("-n", type=int, default=300, help="requests per round and format")
    args = ap.parse_args()
    rows = asyncio.run(_inprocess(args.rounds, args.n))
    print(f"\n== In-process CPU per request (best of {args.rounds} alternating rounds of {args.n})")
    print(format_table(["request", "reply", "chat us", "messages us", "messages/chat"], rows))


if __name__ == "__main__":
    main()
