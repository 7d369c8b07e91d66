"""Helpers shared by the benchmark scripts.

Processes pinned with taskset and stopped by process group, health and first-answer
polling, /proc memory, the gateway config writer, the wrk runner and its parser, the
streaming client runner, percentiles and a plain-text table. Every benchmark script
(run.py now; auth+limits, cache, routing later) builds on these.
"""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
PYTHON = sys.executable
CPU_GATEWAY = 0  # the system under test gets a core to itself
CPU_LOAD = 1  # the mock upstream and the load generators share the other
CHAT_PATH = "/v1/chat/completions"
CHAT_BODY = {"model": "bench", "messages": [{"role": "user", "content": "hi"}]}
RESPONSES_PATH = "/v1/responses"
RESPONSES_BODY = {"model": "bench", "input": "hi"}


# -- processes ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(argv: Sequence[str], cpu: int | None) -> list[str]:
    """Prefix argv with ``taskset -c cpu`` when the machine has that CPU and taskset."""
    if cpu is None or cpu >= (os.cpu_count() or 1) or not shutil.which("taskset"):
        return list(argv)
    return ["taskset", "-c", str(cpu), *argv]


@dataclass
class Service:
    name: str
    port: int
    popen: subprocess.Popen[bytes]
    log: Path
    started_at: float  # time.perf_counter() just before spawn

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Processes:
    """Starts services in their own process groups; stops them all on exit, Ctrl-C too."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: list[Service] = []

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        port: int,
        cpu: int | None,
        env: dict | None = None,
        cwd: Path = REPO,
    ) -> Service:
        log = self.log_dir / f"{name}.log"
        with log.open("wb") as out:
            started = time.perf_counter()
            popen = subprocess.Popen(
                pinned(argv, cpu),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env={**os.environ, **(env or {})},
                start_new_session=True,  # its own group: Ctrl-C reaches us, we stop it
            )
        svc = Service(name, port, popen, log, started)
        self.services.append(svc)
        return svc

    def stop_all(self) -> None:
        while self.services:
            stop(self.services.pop())


def stop(svc: Service, grace: float = 5.0) -> None:
    """SIGTERM the service's process group, then SIGKILL what is left after ``grace``."""
    if svc.popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(svc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            svc.popen.wait(grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(svc.pid, signal.SIGKILL)  # workers it may have left behind
    with contextlib.suppress(subprocess.TimeoutExpired):
        svc.popen.wait(grace)


def prepare_runner() -> None:
    """Make SIGTERM unwind like Ctrl-C, and allow the descriptors 500+ streams need."""

    def _raise(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _raise)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started ignoring it
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


# -- HTTP polling ------------------------------------------------------------------------


class ServiceFailed(RuntimeError):
    pass


def http_call(
    port: int, method: str, path: str, body: object = None, timeout: float = 5.0
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def poll(svc: Service, method: str, path: str, body: object, timeout: float) -> float:
    """Retry a call until it answers 200; return seconds since the service was spawned."""
    deadline = time.perf_counter() + timeout
    last = "no answer"
    while time.perf_counter() < deadline:
        if svc.popen.poll() is not None:
            raise ServiceFailed(f"{svc.name} exited ({svc.popen.returncode}):\n{svc.log_tail()}")
        try:
            status, data = http_call(svc.port, method, path, body, timeout=2.0)
            if status == 200:
                return time.perf_counter() - svc.started_at
            last = f"HTTP {status}: {data[:200]!r}"
        except OSError as exc:
            last = repr(exc)
        time.sleep(0.005)
    raise ServiceFailed(f"{svc.name}: {method} {path} not 200 in {timeout}s ({last})")


def wait_for_health(svc: Service, timeout: float = 30.0) -> float:
    return poll(svc, "GET", "/health", None, timeout)


def time_to_first_answer(svc: Service, timeout: float = 60.0) -> float:
    """Seconds from spawn to the first successful chat completion."""
    return poll(svc, "POST", CHAT_PATH, CHAT_BODY, timeout)


# -- the machine -------------------------------------------------------------------------


def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """cpu index -> (busy, total) jiffies from /proc/stat."""
    out: dict[int, tuple[int, int]] = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            nums = [int(f) for f in fields]
            idle = nums[3] + nums[4]  # idle + iowait
            out[int(name[3:])] = (sum(nums) - idle, sum(nums))
    return out


def cpu_busy(seconds: float = 0.5) -> dict[int, float]:
    """Share of each CPU that other work kept busy over ``seconds`` (0.0 to 1.0)."""
    before = _cpu_ticks()
    time.sleep(seconds)
    after = _cpu_ticks()
    busy: dict[int, float] = {}
    for cpu, (b1, t1) in after.items():
        b0, t0 = before.get(cpu, (b1, t1))
        busy[cpu] = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
    return busy


# -- memory ------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            kids += [int(k) for k in task.read_text().split()]
    return kids


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants so far, from /proc."""
    total = 0.0
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total + sum(cpu_seconds(k) for k in _children(pid))


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants, from /proc."""
    total = 0
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total = int(line.split()[1]) * 1024
    return total + sum(rss_bytes(k) for k in _children(pid))


# -- config ------------------------------------------------------------------------------


def gateway_config(upstream_port: int, port: int, **overrides: Any) -> dict[str, Any]:
    """The benchmark gateway config; ``overrides`` are deep-merged over top-level keys."""
    cfg: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": port},
        "logging": {"level": "warning", "access_log": False},
        "providers": {
            "upstream": {
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{upstream_port}/v1",
                "api_key": "${BENCH_UPSTREAM_KEY:-sk-bench}",
                "max_connections": 1000,
            }
        },
        "models": {"bench": {"deployments": [{"provider": "upstream", "model": "bench-model"}]}},
    }
    return deep_merge(cfg, overrides)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def gateway_argv(config: Path, port: int) -> list[str]:
    serve = ["serve", "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    return [PYTHON, "-m", "gateway", *serve]


def mock_argv(port: int, chunks: int = 50, chunk_delay_ms: float = 10.0) -> list[str]:
    opts = ["--port", str(port), "--chunks", str(chunks), "--chunk-delay-ms", str(chunk_delay_ms)]
    return [PYTHON, str(BENCH_DIR / "mock_upstream.py"), *opts]


# -- wrk ---------------------------------------------------------------------------------


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # socket errors plus non-2xx/3xx answers
    raw: str = field(repr=False, default="")


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _ms(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not m:
        raise ValueError(f"unrecognised wrk duration {value!r}")
    return float(m.group(1)) * _UNITS_MS[m.group(2)]


def parse_wrk(text: str) -> WrkResult:
    """Parse ``wrk --latency`` output."""

    def grab(pattern: str) -> str | None:
        m = re.search(pattern, text, re.MULTILINE)
        return m.group(1) if m else None

    rps, p50, p99 = (
        grab(r"^Requests/sec:\s+([\d.]+)"),
        grab(r"^\s+50%\s+(\S+)"),
        grab(r"^\s+99%\s+(\S+)"),
    )
    if rps is None or p50 is None or p99 is None:
        raise ValueError(f"could not parse wrk output:\n{text}")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = sum(int(g) for g in sock.groups()) if sock else 0
    errors += int(grab(r"Non-2xx or 3xx responses:\s+(\d+)") or 0)
    return WrkResult(
        rps=float(rps),
        p50_ms=_ms(p50),
        p99_ms=_ms(p99),
        requests=int(grab(r"^\s+(\d+) requests in") or 0),
        errors=errors,
        raw=text,
    )


def write_wrk_script(path: Path, body: object, headers: dict[str, str] | None = None) -> Path:
    """A wrk Lua script that POSTs ``body`` as JSON with ``headers``."""
    lua = ['wrk.method = "POST"', f"wrk.body = {_lua_str(json.dumps(body))}"]
    for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
        lua.append(f"wrk.headers[ {_lua_str(name)} ] = {_lua_str(value)}")
    path.write_text("\n".join(lua) + "\n")
    return path


def _lua_str(s: str) -> str:
    return "[==[" + s + "]==]"


def run_wrk(
    url: str, connections: int, duration_s: float, script: Path, cpu: int | None = CPU_LOAD
) -> WrkResult:
    threads = 1 if cpu is not None else min(connections, os.cpu_count() or 1)
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(duration_s))}s"]
    argv += ["--latency", "--timeout", "10s", "-s", str(script), url]
    proc = subprocess.run(pinned(argv, cpu), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse_wrk(proc.stdout)


# -- streaming client --------------------------------------------------------------------


def run_stream_client(
    port: int,
    concurrency: int,
    rounds: int,
    ramp_ms: float = 0.0,
    cpu: int | None = CPU_LOAD,
    *,
    responses: bool = False,
    path: str = CHAT_PATH,
    model: str = "bench",
    api_key: str | None = None,
) -> dict[str, Any]:
    """Run stream_client.py pinned to ``cpu``; return its JSON report. ``responses``: stream
    POST /v1/responses instead of chat completions."""
    argv = [PYTHON, str(BENCH_DIR / "stream_client.py"), "--port", str(port)]
    argv += ["--concurrency", str(concurrency), "--rounds", str(rounds), "--ramp-ms", str(ramp_ms)]
    argv += ["--path", path, "--model", model]
    if responses:
        argv.append("--responses")
    if api_key:
        argv += ["--api-key", api_key]
    proc = subprocess.run(pinned(argv, cpu), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"stream client failed ({proc.returncode}): {proc.stderr}")
    return dict(json.loads(proc.stdout))


# -- numbers and tables ------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    """Linear-interpolated percentile (like numpy's default); NaN for no values."""
    if not values:
        return float("nan")
    xs = sorted(values)
    k = (len(xs) - 1) * pct / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
