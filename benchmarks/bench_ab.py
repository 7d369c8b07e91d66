"""Two source trees' gateways side by side, alternating rounds (plain or production shape).

Both gateways run at once on CPU 0 (one mock upstream and wrk on CPU 1), each from its
own tree (`--a`, `--b`: checkouts of this repository, e.g. main and a worktree), and
wrk loads them in turn, round after round, so a busy machine slows both alike. Each
figure is the median over rounds; `gw CPU us/req` is the gateway process's CPU time per
request from /proc, the steadiest figure when other programs share the cores.

    python benchmarks/bench_ab.py --a /path/to/main --b . [--rounds 4] [--seconds 4] \
        [--shape plain|production]

`--shape production`: both gateways in benchmarks/profiles.py's production shape (a key,
limits and budgets in Redis, metrics, the access log), each with its own key prefix.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

from common import (
    Processes,
    cpu_seconds,
    format_table,
    free_port,
    gateway_argv,
    gateway_config,
    mock_argv,
    run_wrk,
    wait_for_health,
    write_config,
    write_wrk_script,
)
from profiles import PRODUCTION_KEY, production_config

CHAT_BODY = {"model": "bench", "messages": [{"role": "user", "content": "hi"}]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--a", type=Path, required=True, help="tree A (the baseline)")
    parser.add_argument("--b", type=Path, required=True, help="tree B")
    parser.add_argument("--rounds", type=int, default=4, help="even: A and B go first alike")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--connections", default="1,64")
    parser.add_argument("--shape", choices=("plain", "production"), default="plain")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ab-"))
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    connections = [int(c) for c in args.connections.split(",")]
    samples: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
    with Processes(tmp) as processes:
        mock_port = free_port()
        wait_for_health(processes.start("mock", mock_argv(mock_port), mock_port, cpu=1))
        gateways = {}
        for name, tree in trees.items():
            port = free_port()
            shape = (
                production_config(mock_port, port, args.redis_url)
                if args.shape == "production"
                else gateway_config(mock_port, port)
            )
            config = write_config(shape, tmp / f"{name}.yaml")
            gateways[name] = processes.start(  # `python -m gateway` imports its cwd's tree
                f"gateway-{name}", gateway_argv(config, port), port, cpu=0, cwd=tree
            )
            wait_for_health(gateways[name])
        key = {"Authorization": f"Bearer {PRODUCTION_KEY}"} if args.shape == "production" else {}
        script = write_wrk_script(tmp / "chat.lua", CHAT_BODY, key)
        for round_number in range(args.rounds):
            # ABBA...: whichever runs second in a round was measured ~7% slower, so the
            # order alternates and the bias cancels over an even number of rounds.
            order = list(gateways.items())
            if round_number % 2:
                order.reverse()
            for conns in connections:
                for name, gateway in order:
                    url = f"http://127.0.0.1:{gateway.port}/v1/chat/completions"
                    run_wrk(url, conns, 1, script)
                    cpu = cpu_seconds(gateway.pid)
                    result = run_wrk(url, conns, args.seconds, script)
                    used = (cpu_seconds(gateway.pid) - cpu) / max(result.requests, 1) * 1e6
                    samples.setdefault((name, conns), []).append((result.rps, result.p50_ms, used))
    rows = []
    for conns in connections:
        medians = {}
        for name in trees:
            rps, p50, cpu = (
                statistics.median(s[i] for s in samples[(name, conns)]) for i in range(3)
            )
            medians[name] = (rps, p50, cpu)
            rows.append(
                [conns, f"{name} ({trees[name].name})", f"{rps:,.0f}", f"{p50:.3f}", f"{cpu:.0f}"]
            )
        (ra, pa, ca), (rb, pb, cb) = medians["A"], medians["B"]
        rows.append([conns, "B vs A", f"x{rb / ra:.2f}", f"{pb - pa:+.3f}", f"x{cb / ca:.2f}"])
    print(f"{args.shape} shape; load average: {os.getloadavg()}")
    print(format_table(["conns", "gateway", "RPS", "p50 ms", "gw CPU us/req"], rows))


if __name__ == "__main__":
    main()
