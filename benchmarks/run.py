"""Gateway benchmarks in one run: direct-to-upstream vs through the gateway.

Starts the mock upstream on CPU 1 and the gateway on CPU 0, then measures
  nonstream  wrk POSTs at 1 and 64 connections: RPS, p50, p99, added latency, and the
             gateway's CPU per request; the Responses API row (the same chat call
             behind a translated POST /v1/responses) beside the Chat Completions one
  stream     100 and 500 concurrent SSE streams (chat, and responses through the gateway):
             TTFB and total p50/p99, completed
  startup    spawn -> first chat completion, idle RSS (and RSS after the load)
  messages   Anthropic POST /v1/messages (translated, and native passthrough) next to chat
             through the same gateway: RPS, latency, gateway CPU per request and stream
and prints tables with the gateway's figures next to the direct ones of the same run.
Timings are reported, never asserted.

    .venv/bin/python benchmarks/run.py [--quick] [--only nonstream|stream|startup|messages]
                                       [--gateway real|mock|none] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench_messages import bench_messages, bench_messages_stream, native_overrides
from common import (
    CHAT_BODY,
    CHAT_PATH,
    CPU_GATEWAY,
    CPU_LOAD,
    RESPONSES_BODY,
    RESPONSES_PATH,
    Processes,
    Service,
    ServiceFailed,
    cpu_busy,
    cpu_seconds,
    format_table,
    free_port,
    gateway_argv,
    gateway_config,
    mock_argv,
    percentile,
    prepare_runner,
    rss_bytes,
    run_stream_client,
    run_wrk,
    time_to_first_answer,
    wait_for_health,
    write_config,
    write_wrk_script,
)
from profiles import Target, extra_targets
from rows import added, added_rows, compared_rows, ms

SECTIONS = ("nonstream", "stream", "startup", "messages")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    wrk_s: float
    warmup_s: float
    stream_rounds: int
    stream_warmup: bool
    idle_s: float
    chunks: int
    chunk_delay_ms: float
    connections: tuple[int, ...] = (1, 64)
    streams: tuple[int, ...] = (100, 500)

    @property
    def stream_ms(self) -> float:
        return max(self.chunks - 1, 0) * self.chunk_delay_ms


def make_plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        return Plan(2, 1, 1, False, 0.5, args.chunks, args.chunk_delay_ms)
    return Plan(10, 2, 4, True, 2.0, args.chunks, args.chunk_delay_ms)


# -- benchmarks --------------------------------------------------------------------------


def bench_nonstream(
    plan: Plan,
    targets: dict[str, int],
    tmp: Path,
    gw_pid: int | None = None,
    extra: list[Target] | None = None,
) -> dict[str, Any]:
    """Chat completions direct and through the gateway; with the gateway, also the
    Responses API (translated to the same chat call) and the gateway's CPU per request;
    `extra` targets (the production shape, peers) get the same chat rows."""
    runs = [
        Target(name, port, pid=gw_pid if name == "gateway" else None)
        for name, port in targets.items()
    ]
    runs += extra or []
    scripts = {
        t.name: write_wrk_script(tmp / f"{t.name}.lua", {**CHAT_BODY, "model": t.model}, t.headers)
        for t in runs
    }
    paths = {t.name: CHAT_PATH for t in runs}
    if "gateway" in targets:
        runs.insert(2, Target("responses", targets["gateway"], pid=gw_pid))
        scripts["responses"] = write_wrk_script(tmp / "responses.lua", RESPONSES_BODY)
        paths["responses"] = RESPONSES_PATH
    results: dict[str, Any] = {}
    rows: list[list[object]] = []
    for conns in plan.connections:
        for t in runs:
            url = f"http://127.0.0.1:{t.port}{paths[t.name]}"
            run_wrk(url, conns, plan.warmup_s, scripts[t.name])  # fill pools, warm caches
            cpu0 = cpu_seconds(t.pid) if t.pid else None
            r = run_wrk(url, conns, plan.wrk_s, scripts[t.name])
            f = results[f"{t.name}@{conns}"] = {k: v for k, v in asdict(r).items() if k != "raw"}
            if cpu0 is not None and t.pid and r.requests:
                f["gateway_cpu_us"] = (cpu_seconds(t.pid) - cpu0) / r.requests * 1e6
            cpu = f"{f['gateway_cpu_us']:.0f}" if "gateway_cpu_us" in f else "-"
            rows.append([conns, t.name, f"{r.rps:,.0f}", ms(r.p50_ms), ms(r.p99_ms), r.errors, cpu])
        if "gateway" in targets:
            rows += added_rows(results, conns)
        for t in extra or []:
            rows += compared_rows(results, conns, t.name, ["direct", "gateway"])
    print(
        f"\n== Non-streaming POST {CHAT_PATH} (responses: POST {RESPONSES_PATH} through the "
        f"gateway)  (wrk, {plan.wrk_s:g} s per row, CPU {CPU_LOAD})"
    )
    headers = ["conns", "target", "RPS", "p50 ms", "p99 ms", "errors", "gw CPU us/req"]
    print(format_table(headers, rows))
    return results


def stream_figures(report: dict[str, Any]) -> dict[str, float]:
    ttfb = [x * 1000 for x in report["ttfb"]]
    total = [x * 1000 for x in report["total"]]
    return {
        "completed": report["completed"],
        "started": report["started"],
        "ttfb_p50_ms": percentile(ttfb, 50),
        "ttfb_p99_ms": percentile(ttfb, 99),
        "total_p50_ms": percentile(total, 50),
        "total_p99_ms": percentile(total, 99),
        "client_cpu": report["cpu_util"],
        "events_per_stream": report["events_per_stream"],
    }


def bench_stream(
    plan: Plan, targets: dict[str, int], extra: list[Target] | None = None
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows: list[list[object]] = []
    keys = ("ttfb_p50_ms", "ttfb_p99_ms", "total_p50_ms", "total_p99_ms")
    runs = [(name, port, False, None) for name, port in targets.items()]
    if "gateway" in targets:
        runs.append(("responses", targets["gateway"], True, None))
    runs += [(t.name, t.port, False, t.api_key) for t in extra or [] if t.streams]
    for n in plan.streams:
        for name, port, responses, key in runs:
            if plan.stream_warmup:  # open the gateway's upstream connections first
                run_stream_client(port, n, 1, plan.stream_ms, responses=responses, api_key=key)
            report = run_stream_client(
                port, n, plan.stream_rounds, plan.stream_ms, responses=responses, api_key=key
            )
            f = results[f"{name}@{n}"] = stream_figures(report)
            f["errors"] = report["errors"]
            done = f"{f['completed']}/{f['started']}"
            rows.append([n, name, done, *(ms(f[k]) for k in keys), f"{f['client_cpu']:.0%}"])
        if "gateway" in targets:
            d, g, r = (results[f"{t}@{n}"] for t in ("direct", "gateway", "responses"))
            rows.append([n, "added", "", *(added(g[k], d[k]) for k in keys), ""])
            rows.append([n, "resp/chat", "", *(added(r[k], g[k]) for k in keys), ""])
            for name, *_ in runs[3:]:
                x = results[f"{name}@{n}"]
                rows.append([n, f"{name}/plain", "", *(added(x[k], g[k]) for k in keys), ""])
    print(
        f"\n== Streaming  ({plan.chunks} chunks {plan.chunk_delay_ms:g} ms apart, "
        f"{plan.stream_rounds} stream(s) per connection, first requests spread over "
        f"{plan.stream_ms:g} ms, client on CPU {CPU_LOAD})"
    )
    headers = ["streams", "target", "done", "TTFB p50", "TTFB p99", "total p50", "total p99"]
    print(format_table([*headers, "client CPU"], rows))
    print(
        "   (times in ms; done = complete streams / started: chat ends in [DONE], responses"
        " (POST /v1/responses through the gateway) in response.completed)"
    )
    for key, f in results.items():
        if f["errors"]:
            print(f"   {key} errors: {f['errors']}")
    return results


def measure_startup(gw: Service, plan: Plan) -> dict[str, float]:
    first = time_to_first_answer(gw)
    wait_for_health(gw)
    time.sleep(plan.idle_s)
    return {"first_answer_s": first, "idle_rss_mib": rss_bytes(gw.pid) / MIB}


def print_startup(startup: dict[str, float], kind: str) -> None:
    rows = [
        ["spawn -> first chat completion", f"{startup['first_answer_s']:.2f} s"],
        ["RSS when idle after start-up", f"{startup['idle_rss_mib']:.1f} MiB"],
    ]
    if "loaded_rss_mib" in startup:
        rows.append(["RSS after the load above", f"{startup['loaded_rss_mib']:.1f} MiB"])
    print(f"\n== Gateway start-up and memory  ({kind}, CPU {CPU_GATEWAY})")
    print(format_table(["figure", "value"], rows))


# -- orchestration -----------------------------------------------------------------------


def start_gateway(procs: Processes, kind: str, upstream: int, plan: Plan, tmp: Path) -> Service:
    port = free_port()
    if kind == "mock":  # stands in for the gateway while it is being written
        argv = mock_argv(port, plan.chunks, plan.chunk_delay_ms)
    else:
        config = gateway_config(upstream, port, **native_overrides(upstream))
        config = write_config(config, tmp / "gateway.yaml")
        argv = gateway_argv(config, port)
    return procs.start("gateway", argv, port, CPU_GATEWAY)


def warn_if_busy() -> None:
    """Other work on the benchmark CPUs skews every figure: say so up front."""
    for cpu, share in sorted(cpu_busy().items()):
        if cpu in (CPU_GATEWAY, CPU_LOAD) and share > 0.10:
            print(f"warning: CPU {cpu} is {share:.0%} busy before the run; figures will be noisy")


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    plan = make_plan(args)
    warn_if_busy()
    sections = [args.only] if args.only else list(SECTIONS)
    results: dict[str, Any] = {"plan": asdict(plan), "gateway": args.gateway}
    with Processes(tmp) as procs:
        port = free_port()
        up = procs.start(
            "upstream", mock_argv(port, plan.chunks, plan.chunk_delay_ms), port, CPU_LOAD
        )
        wait_for_health(up)
        targets = {"direct": up.port}
        gw = None
        if args.gateway != "none":
            gw = start_gateway(procs, args.gateway, up.port, plan, tmp)
            results["startup"] = measure_startup(gw, plan)
            targets["gateway"] = gw.port
        extra = extra_targets(args, procs, up.port, tmp)
        if "nonstream" in sections:
            gw_pid = gw.pid if gw is not None and args.gateway == "real" else None
            results["nonstream"] = bench_nonstream(plan, targets, tmp, gw_pid, extra)
        if "stream" in sections:
            results["stream"] = bench_stream(plan, targets, extra)
        if "messages" in sections and gw is not None and args.gateway == "real":
            results["messages"] = bench_messages(
                gw, plan.connections, plan.wrk_s, plan.warmup_s, tmp
            )
            results["messages_stream"] = bench_messages_stream(
                gw, plan.streams[:1], plan.stream_rounds, plan.stream_ms
            )
        if gw is None and "startup" in sections:
            print("\n== Gateway start-up and memory: skipped (--gateway none)")
        elif gw is not None and "startup" in sections:
            if len(sections) > 1:
                results["startup"]["loaded_rss_mib"] = rss_bytes(gw.pid) / MIB
            print_startup(results["startup"], args.gateway)
    return results


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs: a smoke test")
    ap.add_argument("--only", choices=SECTIONS, help="run one section")
    ap.add_argument(
        "--gateway",
        choices=("real", "mock", "none"),
        default="real",
        help="real: python -m gateway; mock: a 2nd mock upstream in its place; none: direct only",
    )
    ap.add_argument("--chunks", type=int, default=50, help="SSE chunks per stream")
    ap.add_argument("--chunk-delay-ms", type=float, default=10.0)
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument(
        "--profile",
        choices=("plain", "production"),
        default="plain",
        help="production: also the gateway with a key, limits and budgets in Redis, metrics "
        "and access log on, beside the plain rows",
    )
    ap.add_argument("--peers", action="store_true", help="also LiteLLM / Portkey, if installed")
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    ap.add_argument("--workers", type=int, default=1, help="gateway serve --workers (production)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_runner()
    if (os.cpu_count() or 1) > CPU_LOAD:
        os.sched_setaffinity(0, {CPU_LOAD})  # keep the orchestrator off the gateway's core
    try:
        with tempfile.TemporaryDirectory(prefix="gw-bench-") as tmp:
            results = run(args, Path(tmp))
    except ServiceFailed as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        if args.gateway == "real":
            print(
                "hint: --gateway mock or --gateway none runs without the gateway", file=sys.stderr
            )
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; all benchmark processes stopped", file=sys.stderr)
        return 130
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
