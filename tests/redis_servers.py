"""Real redis-server processes a test owns: plain, Sentinel and a one-node Cluster."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.gateway_process import free_port

Servers = list[subprocess.Popen[bytes]]


def start(args: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(["redis-server", *args], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis(port=port).ping():
                return process
        except redis.RedisError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"redis-server {args} did not start")


def stop_all(servers: Servers) -> None:
    for process in servers:
        process.kill()
        process.wait(5)


def plain_server(servers: Servers) -> int:
    port = free_port()
    servers.append(start(["--port", str(port), "--save", "", "--appendonly", "no"], port))
    return port


def sentinel_server(tmp_path: Path, servers: Servers, service: str) -> tuple[int, int]:
    """A master and a Sentinel watching it as `service`: (master port, sentinel port)."""
    master, sentinel = plain_server(servers), free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {sentinel}\nsentinel monitor {service} 127.0.0.1 {master} 1\ndir {tmp_path}\n"
    )
    servers.append(start([str(conf), "--sentinel"], sentinel))
    return master, sentinel


def cluster_server(tmp_path: Path, servers: Servers) -> int:
    """A one-node cluster holding every slot; its port."""
    port = free_port()
    args = ["--port", str(port), "--save", "", "--appendonly", "no", "--cluster-enabled", "yes"]
    # The bus port defaults to port + 10000, past 65535 for a high free port: choose it too.
    args += ["--cluster-port", str(free_port())]
    args += ["--cluster-config-file", str(tmp_path / "nodes.conf"), "--dir", str(tmp_path)]
    servers.append(start(args, port))
    node = redis.Redis(port=port)
    node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
    deadline = time.monotonic() + 10
    while b"cluster_state:ok" not in node.execute_command("CLUSTER", "INFO"):
        assert time.monotonic() < deadline, "the one-node cluster never became ok"
        time.sleep(0.05)
    return port
