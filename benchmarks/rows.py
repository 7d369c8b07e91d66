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


def added_rows(results: dict[str, Any], conns: int) -> list[list[object]]:
    """gateway vs direct, and Responses vs chat through the gateway (its CPU ratio too)."""
    d, g, r = (results[f"{n}@{conns}"] for n in ("direct", "gateway", "responses"))
    rows: list[list[object]] = [
        [
            conns,
            "added",
            ratio(g["rps"], d["rps"]),
            added(g["p50_ms"], d["p50_ms"]),
            added(g["p99_ms"], d["p99_ms"]),
            "",
            "",
        ],
    ]
    cpu = "-"
    if "gateway_cpu_us" in g and "gateway_cpu_us" in r:
        cpu = ratio(r["gateway_cpu_us"], g["gateway_cpu_us"])
    rows.append(
        [
            conns,
            "resp/chat",
            ratio(r["rps"], g["rps"]),
            added(r["p50_ms"], g["p50_ms"]),
            added(r["p99_ms"], g["p99_ms"]),
            "",
            cpu,
        ]
    )
    return rows


def compared_rows(
    results: dict[str, Any], conns: int, name: str, bases: list[str]
) -> list[list[object]]:
    """`name` against each base: RPS ratio, added p50/p99, CPU per request ratio."""
    rows: list[list[object]] = []
    x = results[f"{name}@{conns}"]
    for base in bases:
        b = results.get(f"{base}@{conns}")
        if b is None:
            continue
        cpu = "-"
        if "gateway_cpu_us" in x and "gateway_cpu_us" in b:
            cpu = ratio(x["gateway_cpu_us"], b["gateway_cpu_us"])
        label = f"{name}/{'plain' if base == 'gateway' else base}"
        rows.append(
            [
                conns,
                label,
                ratio(x["rps"], b["rps"]),
                added(x["p50_ms"], b["p50_ms"]),
                added(x["p99_ms"], b["p99_ms"]),
                "",
                cpu,
            ]
        )
    return rows
