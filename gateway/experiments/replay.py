"""Offline evals: send a scenario file through variants and compare them.

A scenario file is JSON Lines; each line is a chat request body without `model`
(`messages` required, other fields passed as they are) plus an optional `check`:
`{"contains": "text"}`, `{"regex": "pattern"}` or `{"json": true}` (the answer parses as
JSON). A scenario without a check is completed when the request succeeds.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from gateway.accounting.pricing import PriceBook
from gateway.experiments.assign import FORCE_HEADER

Check = Callable[[str], bool]


@dataclass
class VariantTally:
    variant: str
    scenarios: int = 0
    completed: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def row(self) -> list[str]:
        done = self.completed / self.scenarios if self.scenarios else 0.0
        p50 = sorted(self.latencies)[len(self.latencies) // 2] if self.latencies else 0.0
        return [
            self.variant,
            f"{self.completed}/{self.scenarios} ({done:.0%})",
            str(self.errors),
            f"{self.prompt_tokens}/{self.completion_tokens}",
            f"{self.cost:.4f}",
            f"{p50:.3f}",
        ]


def load_scenarios(path: Path) -> list[dict[str, Any]]:
    scenarios = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        item = json.loads(line)
        if not isinstance(item, dict) or not isinstance(item.get("messages"), list):
            raise ValueError(f"{path}:{number}: each line needs a 'messages' array")
        scenarios.append(item)
    return scenarios


def make_check(spec: dict[str, Any] | None) -> Check:
    if not spec:
        return lambda text: True
    if "contains" in spec:
        needle = str(spec["contains"]).lower()
        return lambda text: needle in text.lower()
    if "regex" in spec:
        pattern = re.compile(str(spec["regex"]))
        return lambda text: pattern.search(text) is not None
    if spec.get("json"):
        return _parses_as_json
    raise ValueError(f"unknown check {spec!r} (use contains, regex or json)")


def _parses_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def replay(
    client: httpx.Client,
    scenarios: list[dict[str, Any]],
    variants: list[str],
    *,
    experiment_model: str | None = None,
    prices: PriceBook | None = None,
) -> list[VariantTally]:
    """Each variant is a model alias or route; with `experiment_model` it is a variant of
    the experiment on that model, forced by header."""
    tallies = []
    for variant in variants:
        tally = VariantTally(variant)
        for scenario in scenarios:
            _run_one(client, scenario, variant, experiment_model, prices, tally)
        tallies.append(tally)
    return tallies


def _run_one(
    client: httpx.Client,
    scenario: dict[str, Any],
    variant: str,
    experiment_model: str | None,
    prices: PriceBook | None,
    tally: VariantTally,
) -> None:
    check = make_check(scenario.get("check"))
    body = {k: v for k, v in scenario.items() if k not in ("check", "id")}
    body["model"] = experiment_model or variant
    headers = {FORCE_HEADER: variant} if experiment_model else {}
    tally.scenarios += 1
    started = time.perf_counter()
    answer = client.post("/v1/chat/completions", json=body, headers=headers)
    tally.latencies.append(time.perf_counter() - started)
    if answer.status_code != 200:
        tally.errors += 1
        return
    data = answer.json()
    usage = data.get("usage") or {}
    prompt, completion = (
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
    )
    tally.prompt_tokens += prompt
    tally.completion_tokens += completion
    if prices is not None:
        tally.cost += prices.cost(
            str(body["model"]), str(data.get("model", "")), prompt, completion
        )
    text = (data.get("choices") or [{}])[0].get("message", {}).get("content") or ""
    if check(text):
        tally.completed += 1


def format_comparison(tallies: list[VariantTally]) -> str:
    headers = ["variant", "completed", "errors", "tokens in/out", "cost", "p50 s"]
    rows = [headers, *(t.row() for t in tallies)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
