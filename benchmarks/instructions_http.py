"""Instructions per request over HTTP at a given concurrency: the gateway process as it
serves wrk, counted by callgrind, for the plain gateway and the production shape.

`instructions.py` counts the gateway's own work in-process, one request at a time; this
counts everything the serving process does per request under load: uvicorn and its
parser, the pipeline, the upstream client to the mock upstream, and what batching
amortizes at that concurrency (access-log writes, debit batches, loop turns). Its ratio,
production over plain, is what `run.py`'s throughput ratio at that concurrency comes to
when the gateway's core is the bottleneck, measured as a count that does not move with
the machine's load (timings on a shared VM move by 2x from hour to hour).

    .venv/bin/python benchmarks/instructions_http.py [--connections 64] [--seconds 20]
                                                     [--shapes plain,production]

Needs `valgrind` and `wrk`, and Redis for the production shape. The gateway runs under
callgrind (some 50x slower), with counting off while it starts and warms up; the mock
upstream and wrk run outside valgrind. As in instructions.py, the gateway's timers are
stretched 50x (debit batches, leases, the loop-lag heartbeat, the breakers' sync) so
that they run as often per request as at real speed.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_shape import LAYERS, layered
from common import (
    CHAT_BODY,
    CHAT_PATH,
    PYTHON,
    Processes,
    Service,
    free_port,
    gateway_config,
    mock_argv,
    parse_wrk,
    poll,
    write_config,
    write_wrk_script,
)
from instructions import SLOWDOWN, stretch_timers
from profiles import PRODUCTION_KEY, production_config

SERVE = "--serve"  # this script, inside callgrind: patch the timers, then serve


def serve(config: str, port: int) -> None:
    """Inside callgrind: the gateway's timers stretched, then `gateway serve`."""
    from gateway.cli import main

    stretch_timers()
    serve_argv = ["serve", "--config", config, "--host", "127.0.0.1", "--port", str(port)]
    sys.exit(main(serve_argv))


def counting(pid: int, on: bool) -> None:
    switch = "on" if on else "off"
    subprocess.run(["callgrind_control", "-i", switch, str(pid)], capture_output=True, check=True)


def wrk(port: int, connections: int, seconds: float, script: Path) -> int:
    """Requests wrk completed (every one answered 200, or it raises)."""
    url = f"http://127.0.0.1:{port}{CHAT_PATH}"
    argv = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{round(seconds)}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    done = subprocess.run([*argv, "-s", str(script), url], capture_output=True, text=True)
    result = parse_wrk(done.stdout)
    if result.errors or not result.requests:
        raise RuntimeError(f"wrk: {result.errors} errors, {result.requests} requests")
    return result.requests


def measure(shape: str, connections: int, seconds: float, upstream: int, tmp: Path) -> float:
    port = free_port()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    config, headers = gateway_config(upstream, port), {}
    if shape != "plain":
        production = production_config(upstream, port, redis_url)
        if shape != "production":
            production = {**config, **layered(production, LAYERS[shape])}
        config = production
        if "state" in config:
            config["state"]["lease_seconds"] = SLOWDOWN
        if "auth" in config:
            headers = {"Authorization": f"Bearer {PRODUCTION_KEY}"}
    path = write_config(config, tmp / f"{shape}.yaml")
    script = write_wrk_script(tmp / f"{shape}.lua", CHAT_BODY, headers)
    out = tmp / f"{shape}.callgrind"
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    argv += [PYTHON, __file__, SERVE, str(path), str(port)]
    log = tmp / f"{shape}.log"
    with log.open("wb") as out:
        gateway = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        poll(Service(shape, port, gateway, log, time.perf_counter()), "GET", "/health", None, 600)
        wrk(port, connections, seconds / 2, script)  # warm: pools, memos, leases
        counting(gateway.pid, True)
        requests = wrk(port, connections, seconds, script)
        counting(gateway.pid, False)
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(120)
    text = log.read_text(errors="replace")
    found = re.search(r"Collected : (\d+)", text)
    if found is None:
        raise RuntimeError(f"no count from callgrind:\n{text[-2000:]}")
    return int(found.group(1)) / requests


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == SERVE:
        serve(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--shapes", default="plain,production", help="of plain and LAYERS'")
    parser.add_argument("--keep", type=Path, help="copy callgrind's files here (annotate them)")
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as name, Processes(Path(name)) as procs:
        tmp = Path(name)
        upstream = free_port()
        mock = procs.start("mock", mock_argv(upstream), upstream, None)
        poll(mock, "GET", "/health", None, 30)
        for shape in args.shapes.split(","):
            started = time.perf_counter()
            figures[shape] = measure(shape, args.connections, args.seconds, upstream, tmp)
            took = time.perf_counter() - started
            print(f"{shape}: {figures[shape]:,.0f} instructions per request ({took:.0f} s)")
            if args.keep is not None:
                args.keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(tmp / f"{shape}.callgrind", args.keep / f"{shape}.callgrind")
    if "plain" in figures and "production" in figures:
        print(f"production/plain: x{figures['production'] / figures['plain']:.3f}")


if __name__ == "__main__":
    main()
