"""What one open stream holds in the gateway's heap: tracemalloc with N streams held mid-way.

The gateway runs in this process (uvicorn on uvloop, `GuardedHTTP`, the frozen start-up
heap, as `gateway serve` runs it); the mock upstream and the streaming client are child
processes. After a warm-up, `--streams` streams open at once against a slow mock (each
lasts `--chunks` x `--chunk-delay-ms`); once every one of them is in flight, and again
after a full collection, the traced heap is compared with the idle heap before the burst.
Prints the bytes per stream, total, by file and by source line (`--frames` deep; the top
`--top`); `--who file:line` names an object allocated there and what holds it. With
`--rss-only` nothing is traced and it prints the resident memory per open stream above the
idle process instead (tracemalloc's own bookkeeping would count in it otherwise).

    python benchmarks/stream_memory.py [--streams 500] [--production] [--frames 1]
                                       [--rss-only] [--who gateway/http/reply.py:60]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
import yaml
from common import (
    BENCH_DIR,
    PYTHON,
    Processes,
    free_port,
    gateway_config,
    mock_argv,
    wait_for_health,
)
from profiles import PRODUCTION_KEY, production_config

from gateway.app import create_app
from gateway.config.load import load_config_text
from gateway.config.schema import GatewayConfig
from gateway.heap import settle_heap
from gateway.observability.logging import configure_logging
from gateway.serve import uvicorn_options


def client_argv(port: int, streams: int, key: str | None) -> list[str]:
    argv = [PYTHON, str(BENCH_DIR / "stream_client.py"), "--port", str(port)]
    argv += ["--concurrency", str(streams), "--rounds", "1"]
    return argv + (["--api-key", key] if key else [])


async def until(check: Any, what: Any = str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not in time: {what()}")
        await asyncio.sleep(0.01)


def own_rss() -> int:
    """This process's resident memory (not its children's: the mock and the client)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def mappings() -> dict[str, int]:
    """Resident KB per mapping (start address and name) from /proc/self/smaps."""
    out: dict[str, int] = {}
    name = ""
    with open("/proc/self/smaps") as smaps:
        for line in smaps:
            parts = line.split()
            if "-" in parts[0] and not parts[0].endswith(":"):
                name = f"{parts[0].split('-')[0]} {parts[5] if len(parts) > 5 else '[anon]'}"
            elif parts[0] == "Rss:":
                out[name] = int(parts[1])
    return out


def print_map_growth(before: dict[str, int], after: dict[str, int]) -> None:
    growth = {k: v - before.get(k, 0) for k, v in after.items()}
    for name, kb in sorted(growth.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {kb:8,} KB  {name}")


def who(where: str) -> None:
    """The type of one object allocated at `where` (file:line), and what refers to it."""
    filename, line = where.rsplit(":", 1)
    for obj in gc.get_objects():
        trace = tracemalloc.get_object_traceback(obj)
        if trace is None:
            continue
        frame = trace[-1] if len(trace) > 0 else None
        if frame and frame.filename.endswith(filename) and frame.lineno == int(line):
            print(f"\n{where}: {type(obj).__name__} {str(obj)[:200]}")
            for ref in gc.get_referrers(obj)[:6]:
                print(f"   <- {type(ref).__name__} {str(ref)[:200]}")
            return
    print(f"\n{where}: no tracked object")


def per_stream(diff: list[tracemalloc.StatisticDiff], streams: int) -> float:
    return sum(d.size_diff for d in diff) / streams


def show(title: str, diff: list[tracemalloc.StatisticDiff], streams: int, top: int) -> None:
    print(f"\n{title}: {per_stream(diff, streams):,.0f} B/stream traced")
    if title.startswith("by file"):
        diff = [d for d in diff if d.traceback]
    for stat in diff[:top]:
        if abs(stat.size_diff) < streams * 8:
            break
        frames = " <- ".join(f"{_short(f.filename)}:{f.lineno}" for f in stat.traceback)
        count = stat.count_diff / streams
        print(f"{stat.size_diff / streams:9,.0f} B {count:6.1f} blocks  {frames}")


def _short(filename: str) -> str:
    """A path from its package on (`gateway/...`, `uvicorn/...`, `.11/asyncio/...`)."""
    for marker in ("site-packages/", "/lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    if "/gateway/" in filename:
        return "gateway/" + filename.split("/gateway/", 1)[1]
    return filename


async def peak_of_burst(client: subprocess.Popen[bytes], streams: int, idle_rss: int) -> None:
    """The most traced memory (or RSS) above idle while the burst runs to its end."""
    idle = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    peak_rss = idle_rss
    while client.poll() is None:
        peak_rss = max(peak_rss, own_rss())
        await asyncio.sleep(0.02)
    if tracemalloc.is_tracing():
        peak = tracemalloc.get_traced_memory()[1]
        print(f"peak traced above idle: {(peak - idle) / streams:,.0f} B/stream")
    else:
        print(f"peak RSS above idle: {(peak_rss - idle_rss) / streams / 1024:.1f} KB/stream")


async def measure(args: argparse.Namespace, config: GatewayConfig, key: str | None) -> None:
    app = create_app(config)
    options = uvicorn_options(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=config.server.port, loop="none", **options)
    )
    serving = asyncio.create_task(server.serve())
    await until(lambda: server.started)
    runtime = app.state.runtime
    port = config.server.port
    if args.warmup:
        warmup = client_argv(port, args.warmup, key)
        await asyncio.to_thread(subprocess.run, warmup, capture_output=True)
    settle_heap()
    gc.collect()
    idle_rss = own_rss()
    idle_maps = mappings()
    if not args.rss_only:
        tracemalloc.start(args.frames)
    idle = tracemalloc.take_snapshot() if tracemalloc.is_tracing() else None
    client = subprocess.Popen(client_argv(port, args.streams, key), stdout=subprocess.PIPE)
    if args.peak:
        await peak_of_burst(client, args.streams, idle_rss)
        server.should_exit = True
        await serving
        return
    await until(
        lambda: runtime.in_flight.count >= args.streams,
        lambda: f"{runtime.in_flight.count} streams in flight, client {client.poll()}",
    )
    await asyncio.sleep(args.hold)
    streams = args.streams
    print(f"{streams} streams in flight ({runtime.in_flight.count} counted)")
    if idle is None:
        print(f"RSS above idle: {(own_rss() - idle_rss) / streams / 1024:.1f} KB/stream")
    if args.maps:
        print_map_growth(idle_maps, mappings())
    if idle is not None:
        held = tracemalloc.take_snapshot()
        print(f"a full collection frees {gc.collect()} objects")
        tasks: dict[str, int] = {}
        for task in asyncio.all_tasks():
            name = task.get_coro().__qualname__  # type: ignore[union-attr]
            tasks[name] = tasks.get(name, 0) + 1
        print("tasks:", sorted(tasks.items(), key=lambda kv: -kv[1])[:6])
        for where in args.who:
            who(where)
        live = tracemalloc.take_snapshot()
        tracemalloc.stop()
        key_type = "traceback" if args.frames > 1 else "lineno"
        show("held (as is)", held.compare_to(idle, key_type), streams, args.top)
        show("by file (live)", live.compare_to(idle, "filename"), streams, args.top)
        show("live (after gc.collect())", live.compare_to(idle, key_type), streams, args.top)
    await asyncio.to_thread(client.communicate)
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--production", action="store_true")
    parser.add_argument("--frames", type=int, default=1, help="traceback depth to group by")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--chunks", type=int, default=50)
    parser.add_argument("--chunk-delay-ms", type=float, default=400.0)
    parser.add_argument("--hold", type=float, default=0.5, help="seconds after all opened")
    parser.add_argument("--warmup", type=int, default=20, help="streams before idle is taken")
    parser.add_argument("--peak", action="store_true", help="the burst's peak, to its end")
    parser.add_argument("--maps", action="store_true", help="RSS growth per mapping")
    parser.add_argument("--who", action="append", default=[], help="file:line to explain")
    parser.add_argument("--rss-only", action="store_true", help="no tracemalloc")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1"))
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="stream-memory-"))
    with Processes(tmp) as processes:
        mock_port = free_port()
        mock = mock_argv(mock_port, args.chunks, args.chunk_delay_ms)
        wait_for_health(processes.start("mock", mock, mock_port, None))
        port = free_port()
        raw = (
            production_config(mock_port, port, args.redis_url)
            if args.production
            else gateway_config(mock_port, port)
        )
        config = load_config_text(yaml.safe_dump(raw))
        # The access log's lines go nowhere: only what making them allocates is measured.
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        configure_logging(config.logging.level)
        sys.stderr = sys.__stderr__
        key = PRODUCTION_KEY if args.production else None
        uvloop.run(measure(args, config, key))


if __name__ == "__main__":
    main()
