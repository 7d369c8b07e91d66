"""The extra targets of `run.py`: the production shape, and peer gateways when installed.

production  the gateway as it is meant to run: one key (sent as a Bearer token), request
            and token limits per key and a global request limit, a key budget and a team
            budget (day and month), all shared through Redis (a unique key prefix per run),
            metrics on and one JSON access-log line per request. Measured beside the plain
            gateway (no keys, no limits) with the same wrk rows.
peers       the same rows through a LiteLLM proxy or a Portkey gateway in front of the same
            mock upstream, when they are installed; skipped with a message when not (nothing
            is installed by the benchmark).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import (
    CPU_GATEWAY,
    PYTHON,
    Processes,
    Service,
    free_port,
    gateway_argv,
    gateway_config,
    poll,
    wait_for_health,
    write_config,
)

PRODUCTION_KEY = "sk-bench-production-0123456789abcdef"
PRODUCTION_LIMITS = {
    "default_key": {
        "requests": ["100000000/minute", "1000000000/day"],
        "tokens": ["1000000000000/minute"],
    },
    "global": {"requests": ["1000000000/minute"]},
}
BUDGET = {"usd_per_day": 1e12, "tokens_per_month": 10**15}


@dataclass
class Target:
    """One thing wrk is pointed at: its port, the headers it needs, the process (for CPU)."""

    name: str
    port: int
    headers: dict[str, str] = field(default_factory=dict)
    pid: int | None = None
    model: str = "bench"
    api_key: str | None = None  # for the streaming client, which sends no other header
    streams: bool = False  # measured in the streaming rows too


def production_config(upstream: int, port: int, redis_url: str) -> dict[str, Any]:
    key_hash = "sha256:" + hashlib.sha256(PRODUCTION_KEY.encode()).hexdigest()
    state = {
        "backend": "redis",
        "redis_url": redis_url,
        "key_prefix": f"bench-{uuid.uuid4().hex[:8]}:",
    }
    auth = {
        "keys": [{"id": "bench", "hash": key_hash, "team": "bench-team", "budget": BUDGET}],
        "teams": {"bench-team": {"budget": BUDGET}},
    }
    return gateway_config(
        upstream,
        port,
        state=state,
        auth=auth,
        limits=PRODUCTION_LIMITS,
        logging={"level": "info", "access_log": True},
        metrics={"enabled": True},
    )


def start_production(
    procs: Processes, upstream: int, tmp: Path, cpu: int | None, redis_url: str, workers: int = 1
) -> Service:
    port = free_port()
    config = write_config(production_config(upstream, port, redis_url), tmp / "production.yaml")
    argv = gateway_argv(config, port)
    if workers > 1:
        argv += ["--workers", str(workers)]
    return procs.start("production", argv, port, cpu)


def production_target(svc: Service) -> Target:
    auth = {"Authorization": f"Bearer {PRODUCTION_KEY}"}
    return Target("production", svc.port, auth, svc.pid, api_key=PRODUCTION_KEY, streams=True)


# -- peers -------------------------------------------------------------------------------


def litellm_ready() -> str | None:
    """None when the LiteLLM proxy can start here, else why not."""
    if importlib.util.find_spec("litellm") is None:
        return "litellm is not installed (pip install 'litellm[proxy]')"
    if importlib.util.find_spec("fastapi") is None:
        return "litellm is installed without its proxy extra (pip install 'litellm[proxy]')"
    return None


def start_litellm(procs: Processes, upstream: int, tmp: Path, cpu: int) -> Service:
    port = free_port()
    config = tmp / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: bench\n"
        "    litellm_params:\n"
        "      model: openai/bench-model\n"
        f"      api_base: http://127.0.0.1:{upstream}/v1\n"
        "      api_key: sk-bench\n"
    )
    argv = [PYTHON, "-m", "litellm", "--config", str(config), "--port", str(port)]
    argv += ["--host", "127.0.0.1", "--num_workers", "1"]
    return procs.start("litellm", argv, port, cpu, env={"LITELLM_LOG": "ERROR"})


def portkey_entry() -> Path | None:
    """The Portkey gateway's server script, from $PORTKEY_GATEWAY_DIR or npm's global root."""
    roots = [os.environ.get("PORTKEY_GATEWAY_DIR", "")]
    if shutil.which("npm"):
        out = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, check=False)
        roots.append(str(Path(out.stdout.strip()) / "@portkey-ai" / "gateway"))
    for root in filter(None, roots):
        for rel in ("build/start-server.js", "dist/start-server.js"):
            if (Path(root) / rel).is_file():
                return Path(root) / rel
    return None


def start_portkey(procs: Processes, entry: Path, cpu: int) -> Service:
    port = free_port()
    return procs.start("portkey", ["node", str(entry), "--port", str(port)], port, cpu)


def portkey_target(svc: Service, upstream: int) -> Target:
    """Portkey routes by headers: the provider and the upstream's base URL."""
    headers = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": f"http://127.0.0.1:{upstream}/v1",
        "Authorization": "Bearer sk-bench",
    }
    return Target("portkey", svc.port, headers, svc.pid, model="bench-model")


def extra_targets(
    args: argparse.Namespace, procs: Processes, upstream: int, tmp: Path
) -> list[Target]:
    """The production shape (`--profile production`) and the peers (`--peers`), started and
    answering; a peer that is not installed is skipped with a message."""
    out: list[Target] = []
    if args.profile == "production":
        cpu = CPU_GATEWAY if args.workers == 1 else None  # several workers: every core
        svc = start_production(procs, upstream, tmp, cpu, args.redis_url, args.workers)
        wait_for_health(svc)
        out.append(production_target(svc))
    if not args.peers:
        return out
    why = litellm_ready()
    if why is None:
        svc = start_litellm(procs, upstream, tmp, CPU_GATEWAY)
        poll(svc, "GET", "/health/liveliness", None, 120.0)
        out.append(Target("litellm", svc.port, {"Authorization": "Bearer sk-bench"}, svc.pid))
    else:
        print(f"peer litellm skipped: {why}")
    entry = portkey_entry()
    if entry is not None:
        svc = start_portkey(procs, entry, CPU_GATEWAY)
        poll(svc, "GET", "/", None, 60.0)
        out.append(portkey_target(svc, upstream))
    else:
        print(
            "peer portkey skipped: @portkey-ai/gateway not found (npm install -g "
            "@portkey-ai/gateway, or set PORTKEY_GATEWAY_DIR)"
        )
    return out
