"""What the production shape costs over the plain gateway: CPU per request, in-process.

Both gateways are driven through ASGI directly (no sockets) with the mock provider (no
upstream), so the figures are the gateway's own work and the difference between them is
what keys, limits and budgets in Redis, metrics and the JSON access log add (the
production shape of benchmarks/profiles.py, with `kind: mock` in place of the HTTP
upstream). Plain and production runs alternate (ABAB...) so load on the machine hits both
alike; the access log goes to stderr (send it to /dev/null). `--profile` prints the
production shape's top functions by own time (cProfile) after the figures.

    .venv/bin/python benchmarks/bench_shape.py [--requests 2000] [--rounds 4] [--profile] \
        [--ablate] [--database postgresql://...] 2>/dev/null

`--database URL` adds the production shape with `state.database` set (the ledger, budgets
rebuilt from it): a migrated database (`gateway db upgrade --database URL`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import itertools
import os
import pstats
import statistics
import time
from typing import Any

import orjson
import yaml
from bench_responses import call
from profiles import PRODUCTION_KEY, production_config

from gateway.app import create_app
from gateway.config import load_config_text
from gateway.observability.logging import configure_logging

BODY = orjson.dumps({"model": "bench", "messages": [{"role": "user", "content": "hello there"}]})
MOCK = {"mock": {"kind": "mock", "mock": {"chunks": 2}}}


# --ablate: the production shape built up one part at a time, each measured beside plain.
LAYERS = {
    "observe": ("logging", "metrics"),
    "key": ("logging", "metrics", "auth", "state"),
    "limits": ("logging", "metrics", "auth", "state", "limits"),
    "production": ("logging", "metrics", "auth", "state", "limits", "budgets"),
}


def config_text(
    production: bool,
    redis_url: str,
    layers: tuple[str, ...] | None = None,
    database: str | None = None,
) -> str:
    plain = {"logging": {"level": "warning", "access_log": False}}  # as run.py's plain row
    config = production_config(1, 1, redis_url) if production else plain
    if database is not None:
        config["state"]["database"] = database
    if production and layers is not None:
        config = layered(config, layers)
    config["providers"] = MOCK
    config["models"] = {"bench": {"deployments": [{"provider": "mock", "model": "bench-model"}]}}
    return yaml.safe_dump(config)


def layered(full: dict[str, Any], layers: tuple[str, ...]) -> dict[str, Any]:
    """The production config with only `layers` of it (LAYERS), the rest left out."""
    parts = ("logging", "metrics", "auth", "state", "limits")
    config = {k: full[k] for k in parts if k in layers}
    if "auth" in config and "budgets" not in layers:
        keys = full["auth"]["keys"]
        unbudgeted = [{k: v for k, v in key.items() if k != "budget"} for key in keys]
        config["auth"] = {"keys": unbudgeted}
    return config


async def cpu_per_request(
    app: Any, headers: list[tuple[bytes, bytes]], requests: int, collect: bool = True
) -> float:
    if collect:  # a full collection first (its own cost: the whole heap, not per request)
        gc.collect()
    start = time.process_time()
    for _ in range(requests):
        status = await call(app, "/v1/chat/completions", BODY, headers)
        if status != 200:
            raise RuntimeError(f"answered {status}")
        await asyncio.sleep(0)  # one loop turn between requests, as a server gives
    return (time.process_time() - start) / requests * 1e6


async def main(
    requests: int,
    rounds: int,
    profile: bool,
    redis_url: str,
    ablate: bool,
    database: str | None,
) -> None:
    configure_logging("info")  # as `gateway serve` does: access-log lines are formatted
    plain = create_app(load_config_text(config_text(False, redis_url)))
    production = create_app(load_config_text(config_text(True, redis_url)))
    key = [(b"authorization", f"Bearer {PRODUCTION_KEY}".encode())]
    shapes = {"plain": (plain, [])}
    if ablate:
        for name, layers in LAYERS.items():
            if name != "production":
                app = create_app(load_config_text(config_text(True, redis_url, layers)))
                shapes[name] = (app, key if "auth" in layers else [])
    shapes["production"] = (production, key)
    if database is not None:
        with_db = create_app(load_config_text(config_text(True, redis_url, database=database)))
        shapes["production+db"] = (with_db, key)
    figures: dict[str, list[float]] = {name: [] for name in shapes}
    async with contextlib.AsyncExitStack() as stack:
        for app, _ in shapes.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        for app, headers in shapes.values():  # warm up
            await cpu_per_request(app, headers, 300)
        for _ in range(rounds):
            for name, (app, headers) in shapes.items():
                figures[name].append(await cpu_per_request(app, headers, requests))
        if profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await cpu_per_request(production, key, requests)
            profiler.disable()
    median = {name: statistics.median(values) for name, values in figures.items()}
    print(f"CPU per request, in-process, mock provider ({rounds} rounds of {requests}; median)")
    least = {name: min(values) for name, values in figures.items()}
    for name, value in median.items():
        runs = ", ".join(f"{v:.0f}" for v in figures[name])
        print(f"  {name:11} {value:7.1f} us, least {least[name]:.1f}   (runs: {runs})")
    if ablate:
        names = [name for name in shapes if name != "production+db"]
        for before, after in itertools.pairwise(names):
            print(f"  {after} adds {median[after] - median[before]:6.1f} us over {before} (median)")
    for how, figure in (("median", median), ("least", least)):
        added = figure["production"] - figure["plain"]
        ratio = figure["production"] / figure["plain"]
        print(f"  production adds {added:.1f} us (x{ratio:.2f}), by the {how} run")
    if profile:
        stats = pstats.Stats(profiler)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats("gateway", 60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--ablate", action="store_true", help="add the parts one at a time")
    parser.add_argument(
        "--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379")
    )
    parser.add_argument("--database", help="also the production shape with this database")
    args = parser.parse_args()
    asyncio.run(
        main(args.requests, args.rounds, args.profile, args.redis_url, args.ablate, args.database)
    )
