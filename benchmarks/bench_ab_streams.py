"""Two source trees' gateways side by side under bursts of concurrent streams.

Both gateways run at once on CPU 0 (one mock upstream and the streaming client on CPU 1),
each from its own tree (`--a`, `--b`), and take turns: round after round, `--streams`
streams open over 490 ms (`--per` streams on each connection, one after another). Per
round: the gateway's CPU time per stream and per relayed event (from /proc), TTFB and
total time. Before the rounds, each gateway takes one burst of `--streams` streams opened
at once: its resident memory at the peak of that burst, above its idle RSS, per stream.
Medians over rounds. `--production` runs the production shape (keys, limits, budgets in
Redis, metrics, access log; benchmarks/profiles.py).

    python benchmarks/bench_ab_streams.py --a /path/to/main --b . [--streams 500]
                                          [--rounds 3] [--per 2] [--production]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
from pathlib import Path
from typing import Any

from common import (
    CPU_GATEWAY,
    CPU_LOAD,
    Processes,
    Service,
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
    wait_for_health,
    write_config,
)
from profiles import PRODUCTION_KEY, production_config

RAMP_MS = 490.0


def peak_rss_kb_per_stream(gateway: Service, streams: int, key: str | None) -> float:
    """RSS at the peak of one burst of `streams` streams opened at once, above idle."""
    idle = rss_bytes(gateway.pid)
    peak = [idle]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_bytes(gateway.pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run_stream_client(gateway.port, streams, 1, 0.0, api_key=key)
    finally:
        done.set()
        sampler.join()
    return (peak[0] - idle) / streams / 1024


def one_round(gateway: Service, args: argparse.Namespace, key: str | None) -> dict[str, float]:
    cpu = cpu_seconds(gateway.pid)
    report = run_stream_client(gateway.port, args.streams, args.per, RAMP_MS, api_key=key)
    used = cpu_seconds(gateway.pid) - cpu
    started, events = report["started"], report["events_per_stream"]
    ttfb = [t * 1000 for t in report["ttfb"]]
    total = [t * 1000 for t in report["total"]]
    return {
        "cpu_stream": used / started * 1e6,
        "cpu_event": used / (started * events) * 1e6 if events else float("nan"),
        "ttfb50": percentile(ttfb, 50),
        "ttfb99": percentile(ttfb, 99),
        "total50": percentile(total, 50),
        "total99": percentile(total, 99),
        "incomplete": started - report["completed"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="tree A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="tree B")
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--per", type=int, default=2, help="streams per connection a round")
    parser.add_argument("--production", action="store_true")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1"))
    args = parser.parse_args()
    prepare_runner()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-streams-"))
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    key = PRODUCTION_KEY if args.production else None
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    memory: dict[str, float] = {}
    with Processes(tmp) as processes:
        mock_port = free_port()
        wait_for_health(processes.start("mock", mock_argv(mock_port), mock_port, CPU_LOAD))
        gateways = {}
        for name, tree in trees.items():
            port = free_port()
            config: dict[str, Any] = (
                production_config(mock_port, port, args.redis_url)
                if args.production
                else gateway_config(mock_port, port)
            )
            path = write_config(config, tmp / f"{name}.yaml")
            gateways[name] = processes.start(  # `python -m gateway` imports its cwd's tree
                f"gateway-{name}", gateway_argv(path, port), port, CPU_GATEWAY, cwd=tree
            )
            wait_for_health(gateways[name])
        for name, gateway in gateways.items():
            memory[name] = peak_rss_kb_per_stream(gateway, args.streams, key)
        for round_number in range(args.rounds):
            order = list(gateways.items())  # ABBA...: as bench_ab.py, no seat is favoured
            if round_number % 2:
                order.reverse()
            for name, gateway in order:
                samples[name].append(one_round(gateway, args, key))
    columns = ["cpu_stream", "cpu_event", "ttfb50", "ttfb99", "total50", "total99"]
    rows = []
    medians = {}
    for name, tree in trees.items():
        medians[name] = {c: statistics.median(s[c] for s in samples[name]) for c in columns}
        incomplete = sum(s["incomplete"] for s in samples[name])
        cells = [f"{medians[name][c]:,.1f}" for c in columns]
        rows.append([f"{name} ({tree.name})", *cells, f"{memory[name]:.1f}", incomplete])
    a, b = medians["A"], medians["B"]
    ratios = [f"x{b[c] / a[c]:.2f}" for c in columns]
    rows.append(["B vs A", *ratios, f"x{memory['B'] / memory['A']:.2f}", ""])
    print(f"load average: {os.getloadavg()}; {args.streams} streams, {args.rounds} rounds")
    headers = ["gateway", "CPU us/stream", "CPU us/event", "TTFB p50", "TTFB p99"]
    headers += ["total p50", "total p99", "peak KB/stream", "incomplete"]
    print(format_table(headers, rows))


if __name__ == "__main__":
    main()
