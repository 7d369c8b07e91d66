"""A real `gateway serve` in a subprocess (for signals, several workers, shutdown)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx


@dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gateway_process(
    config_path: Path,
    *,
    workers: int = 1,
    env: dict[str, str] | None = None,
    preexec_fn: Callable[[], None] | None = None,  # e.g. lower the child's fd limit
) -> Iterator[GatewayProcess]:
    port = free_port()
    log_path = config_path.with_suffix(f".{port}.log")
    command = [sys.executable, "-m", "gateway", "serve", "--config", str(config_path)]
    command += ["--port", str(port), "--workers", str(workers)]
    full_env = {**os.environ, **(env or {})}
    full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=full_env, preexec_fn=preexec_fn
        )
    running = GatewayProcess(process, port, log_path)
    try:
        wait_healthy(running, workers)
        yield running
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def wait_healthy(running: GatewayProcess, workers: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if running.process.poll() is not None:
            raise RuntimeError(f"gateway exited early:\n{running.logs()}")
        try:
            ready = httpx.get(f"{running.url}/ready", timeout=1).status_code == 200
            if ready and running.logs().count("gateway started") >= workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"gateway did not become ready:\n{running.logs()}")
