"""Figures side by side for run.py's tables: ms, ratios, and the comparison rows."""

from __future__ import annotations

import math
from typing import Any


def ms(x: float) -> str:
    if math.isnan(x):
        return "-"
    return f"{x:.3f}" if abs(x) < 1 else f"{x:.2f}" if abs(x) < 100 else f"{x:.1f}"


def added(gw: float, direct: float) -> str:
    return "-" if math.isnan(gw - direct) else ("+" if gw >= direct else "") + ms(gw - direct)


def ratio(gw: float, direct: float) -> str:
    return f"x{gw / direct:.2f}" if direct else "-"


def compare_row(
    conns: int, label: str, x: dict[str, Any], base: dict[str, Any], cpu: bool = True
) -> list[object]:
    """x against base: RPS ratio, added p50/p99 and (`cpu`) the CPU-per-request ratio."""
    cpu_ratio = "-" if cpu else ""
    if cpu and "gateway_cpu_us" in x and "gateway_cpu_us" in base:
        cpu_ratio = ratio(x["gateway_cpu_us"], base["gateway_cpu_us"])
    rps = ratio(x["rps"], base["rps"])
    p50, p99 = (added(x[k], base[k]) for k in ("p50_ms", "p99_ms"))
    return [conns, label, rps, p50, p99, "", cpu_ratio]


def added_rows(results: dict[str, Any], conns: int) -> list[list[object]]:
    """gateway vs direct, and Responses vs chat through the gateway (its CPU ratio too)."""
    d, g, r = (results[f"{n}@{conns}"] for n in ("direct", "gateway", "responses"))
    return [compare_row(conns, "added", g, d, cpu=False), compare_row(conns, "resp/chat", r, g)]


def compared_rows(
    results: dict[str, Any], conns: int, name: str, bases: list[str]
) -> list[list[object]]:
    """`name` against each base present (the plain gateway is labelled `plain`)."""
    x = results[f"{name}@{conns}"]
    return [
        compare_row(conns, f"{name}/{'plain' if base == 'gateway' else base}", x, b)
        for base in bases
        if (b := results.get(f"{base}@{conns}")) is not None
    ]
