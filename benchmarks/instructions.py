"""Instructions per request, in-process, for one shape of bench_shape.py: a figure that
does not move with the machine's load (valgrind's callgrind counts every instruction).

Timings on a shared VM move by 10-30% from one run to the next; an instruction count
moves by about 1-2% (what varies is the work timers do: batched writes and lease
refills). Use it to compare two trees, or a change piece by piece, before timing it.

    .venv/bin/python benchmarks/instructions.py [--shape plain|observe|key|limits|production]
                                                [--requests 500]

Needs `valgrind` (apt-get install valgrind). Runs the gateway under callgrind with
counting off until the warm-up is done, then counts `--requests` requests. Under
valgrind a request takes some 50x longer, so time-driven work would run 50x more often
per request than it does for real: the debit batches wait 50x longer (2.5 s, not 50 ms),
leases live 50 s, and the loop-lag heartbeat and the circuit breakers' read of shared
state run 50x less often, as they do at real speed over as many requests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import re
import subprocess
import sys
from pathlib import Path

SLOWDOWN = 50  # about what callgrind costs; scales the timers to match
COUNTING = "BENCH_INSTRUCTIONS_COUNTING"


def measure(shape: str, requests: int) -> float:
    """Instructions per request: this script again, under callgrind."""
    argv = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        __file__,
        "--shape",
        shape,
        "--requests",
        str(requests),
    ]
    env = {**os.environ, COUNTING: "1"}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no count from callgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1)) / requests


def counting(on: bool) -> None:
    switch = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], capture_output=True)


def stretch_timers() -> None:
    """The gateway's time-driven work made SLOWDOWN times rarer, as callgrind makes each
    request slower: the debit batches' delay, the loop-lag heartbeat and the breakers'
    read of shared state (leases: `state.lease_seconds` in the config)."""
    from gateway.dispatch import breaker
    from gateway.state import loop_lag, write_batch

    defaults = list(write_batch.WriteBatch.__init__.__defaults__ or ())
    defaults[0] = write_batch.BATCH_SECONDS * SLOWDOWN
    write_batch.WriteBatch.__init__.__defaults__ = tuple(defaults)
    loop_lag.INTERVAL_SECONDS *= SLOWDOWN
    loop_lag.LATE_SECONDS *= SLOWDOWN
    breaker.SYNC_SECONDS *= SLOWDOWN


async def run_counted(shape: str, requests: int) -> None:
    """Inside callgrind: warm up uncounted, then count `requests` requests."""
    import bench_shape
    import yaml
    from profiles import PRODUCTION_KEY

    from gateway.app import create_app
    from gateway.config import load_config_text
    from gateway.observability.logging import configure_logging

    stretch_timers()
    production = shape != "plain"
    layers = bench_shape.LAYERS.get(shape) if shape != "production" else None
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    config = yaml.safe_load(bench_shape.config_text(production, redis_url, layers))
    if "state" in config:
        config["state"]["lease_seconds"] = SLOWDOWN
    configure_logging("info")
    app = create_app(load_config_text(yaml.safe_dump(config)))
    keyed = production and (layers is None or "auth" in layers)
    headers = [(b"authorization", f"Bearer {PRODUCTION_KEY}".encode())] if keyed else []
    async with app.router.lifespan_context(app):
        await bench_shape.cpu_per_request(app, headers, 300)
        gc.collect()  # before counting: a full collection walks the whole heap once
        counting(True)
        await bench_shape.cpu_per_request(app, headers, requests, collect=False)
        counting(False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shape", default="production")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    if os.environ.get(COUNTING):
        sys.path.insert(0, str(Path(__file__).parent))
        asyncio.run(run_counted(args.shape, args.requests))
        return
    figure = measure(args.shape, args.requests)
    print(f"{args.shape}: {figure:,.0f} instructions per request ({args.requests} counted)")


if __name__ == "__main__":
    main()
