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
    for conns in connections:
        base_cpu = 0.0
        for name, path, model in TARGETS:
            body = CHAT_BODY if path == CHAT_PATH else MESSAGES_BODY
            script = write_wrk_script(tmp / f"{name}.lua", {**body, "model": model})
            url = f"http://127.0.0.1:{gw.port}{path}"
            run_wrk(url, conns, warmup_s, script)
            before = cpu_seconds(gw.pid)
            r = run_wrk(url, conns, wrk_s, script)
            cpu_us = (cpu_seconds(gw.pid) - before) / max(r.requests, 1) * 1e6
            base_cpu = base_cpu or cpu_us
            results[f"{name}@{conns}"] = {"rps": r.rps, "p50_ms": r.p50_ms, "cpu_us": cpu_us}
            row = [conns, name, f"{r.rps:,.0f}", f"{r.p50_ms:.2f}", f"{r.p99_ms:.2f}"]
            rows.append([*row, f"{cpu_us:.0f}", _ratio(cpu_us, base_cpu), r.errors])
    print(f"\n== Messages, non-streaming (wrk, {wrk_s:g} s per row, CPU {CPU_LOAD})")
    headers = ["conns", "target", "RPS", "p50 ms", "p99 ms", "gw CPU us/req", "vs chat"]
    print(format_table([*headers, "errors"], rows))
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
