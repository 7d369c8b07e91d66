"""Where the gateway's CPU goes under load: py-spy samples, self time by package.

Starts the mock upstream (CPU 1) and the gateway in the plain or the production shape
(benchmarks/profiles.py; CPU 0), loads it with wrk at `--connections` while py-spy records
it (or, with `--streams N`, opens N concurrent streams again and again with the streaming
client), then prints each package's share of the samples where it was on top of the stack (self
time): `gateway.<module>`, a site-packages distribution, a standard-library module, or
`native` (C frames with `--native`). Also writes the raw collapsed stacks, and with
`--speedscope` a file for https://www.speedscope.app.

    .venv/bin/python benchmarks/profile_shape.py [--shape production|plain] [--seconds 10]
                                                 [--streams 500] [--native] [--out DIR]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    CHAT_BODY,
    CHAT_PATH,
    CPU_GATEWAY,
    CPU_LOAD,
    Processes,
    format_table,
    free_port,
    gateway_argv,
    gateway_config,
    mock_argv,
    pinned,
    prepare_runner,
    run_stream_client,
    run_wrk,
    wait_for_health,
    write_config,
    write_wrk_script,
)
from profiles import production_target, start_production

FRAME_FILE = re.compile(r"\((?P<file>[^():]+)(?::\d+)?\)$")


def package_of(frame: str) -> str:
    """The package a collapsed-stack frame belongs to (py-spy names files by module path:
    `redis/asyncio/connection.py`, `asyncio/tasks.py`, `gateway/ratelimit/limiter.py`)."""
    found = FRAME_FILE.search(frame)
    if found is None:
        return "native"
    if "asyncio/runners.py" in frame:
        return "uvloop (C) + poll"
    path = found.group("file")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    parts = Path(path).parts
    if not path.endswith(".py") or not parts:
        return "native"
    if parts[0] == "gateway":
        return "gateway." + ".".join(parts[1:]).removesuffix(".py")
    top = parts[0].removesuffix(".py")
    return ("stdlib." if top in sys.stdlib_module_names else "") + top


# An idle thread-pool worker waiting for work: not CPU. (The event loop's own leaf,
# asyncio/runners.py, is uvloop's C code and its epoll wait: see --native.)
IDLE_LEAVES = ("_worker (concurrent/futures/thread.py:81)",)


def self_time(
    collapsed: Path,
) -> tuple[collections.Counter[str], collections.Counter[str], int]:
    """Samples per package on top of the stack (self), and anywhere in it (inclusive)."""
    own: collections.Counter[str] = collections.Counter()
    anywhere: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        frames = stack.split(";")[1:]  # the first is the process
        if not frames or frames[-1] in IDLE_LEAVES:
            continue
        own[package_of(frames[-1])] += int(n)
        for package in {package_of(f) for f in frames}:
            anywhere[package] += int(n)
        total += int(n)
    return own, anywhere, total


def record(pid: int, seconds: float, out: Path, fmt: str, native: bool) -> subprocess.Popen:
    argv = ["py-spy", "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--rate", "200", "--format", fmt, "--output", str(out), "--subprocesses"]
    if native:
        argv.append("--native")
    return subprocess.Popen(pinned(argv, CPU_LOAD), stdout=subprocess.DEVNULL)


def start_plain(procs: Processes, upstream: int, tmp: Path):  # type: ignore[no-untyped-def]
    port = free_port()
    config = write_config(gateway_config(upstream, port), tmp / "plain.yaml")
    return procs.start("plain", gateway_argv(config, port), port, CPU_GATEWAY)


def _load(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, port: int, url: str, script: Path, headers: dict[str, str]
):
    """A function that loads the gateway for about `seconds` and describes the load."""

    def wrk(seconds: float) -> str:
        result = run_wrk(url, args.connections, seconds, script)
        return f"{result.rps:,.0f} RPS at c={args.connections}"

    def streams(seconds: float) -> str:
        rounds = max(1, round(seconds / 0.6))  # a default stream lasts about 0.5 s
        key = headers.get("Authorization", "").removeprefix("Bearer ") or None
        report = run_stream_client(port, args.streams, rounds, 490.0, api_key=key)
        ttfb = sorted(report["ttfb"])
        return (
            f"{args.streams} streams x {rounds} rounds, {report['completed']}/"
            f"{report['started']} complete, TTFB p50 {ttfb[len(ttfb) // 2] * 1000:.1f} ms"
        )

    return streams if args.streams else wrk


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", choices=("production", "plain"), default="production")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument(
        "--streams", type=int, default=0, help="load with N concurrent streams instead of wrk"
    )
    ap.add_argument("--native", action="store_true", help="C frames too (py-spy --native)")
    ap.add_argument("--speedscope", action="store_true", help="also a speedscope file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--out", type=Path, default=Path("profile-out"))
    ap.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379"))
    args = ap.parse_args(argv)
    if shutil.which("py-spy") is None:
        print("py-spy is missing: pip install py-spy", file=sys.stderr)
        return 1
    prepare_runner()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="gw-prof-") as tmp, Processes(Path(tmp)) as procs:
        port = free_port()
        up = procs.start("upstream", mock_argv(port), port, CPU_LOAD)
        wait_for_health(up)
        if args.shape == "production":
            gw = start_production(procs, up.port, Path(tmp), CPU_GATEWAY, args.redis_url)
            headers = production_target(gw).headers
        else:
            gw = start_plain(procs, up.port, Path(tmp))
            headers = {}
        wait_for_health(gw)
        script = write_wrk_script(Path(tmp) / "chat.lua", CHAT_BODY, headers)
        url = f"http://127.0.0.1:{gw.port}{CHAT_PATH}"
        load = _load(args, gw.port, url, script, headers)
        load(2)  # warm up
        collapsed = args.out / f"{args.shape}.collapsed.txt"
        spy = record(gw.pid, args.seconds, collapsed, "raw", args.native)
        time.sleep(0.5)
        summary = load(args.seconds)
        spy.wait()
        if args.speedscope:
            scope = record(
                gw.pid,
                args.seconds / 2,
                args.out / f"{args.shape}.speedscope.json",
                "speedscope",
                args.native,
            )
            load(args.seconds / 2)
            scope.wait()
    counts, inclusive, total = self_time(collapsed)
    print(f"\n== {args.shape}: {summary} under py-spy, {total} samples; self time by package")
    rows = [
        [name, n, f"{n / total:.1%}", f"{inclusive[name] / total:.1%}"]
        for name, n in counts.most_common(args.top)
    ]
    print(format_table(["package", "samples", "self", "inclusive"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
