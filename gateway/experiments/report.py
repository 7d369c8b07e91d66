"""The experiment report: JSON for the admin endpoint, a plain table for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gateway.config.experiments import ExperimentConfig
from gateway.experiments.stats import summarize
from gateway.experiments.store import ExperimentStore

Row = dict[str, Any]


async def build_report(
    store: ExperimentStore, name: str, experiment: ExperimentConfig
) -> dict[str, Any]:
    raw = await store.read(name, list(experiment.variants))
    results = summarize(raw, experiment.control_variant)
    return {
        "experiment": name,
        "applies_to": experiment.applies_to,
        "enabled": experiment.enabled,
        "control": experiment.control_variant,
        "variants": [r.as_dict() for r in results],
    }


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _test(test: dict[str, Any] | None) -> str:
    if test is None:
        return "-"
    verdict = "significant" if test["significant"] else "not significant"
    return f"z={test['z']:+.2f} p={test['p_value']:.3f} {verdict}"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


COLUMNS: tuple[tuple[str, Callable[[Row], str]], ...] = (
    ("variant", lambda r: r["variant"] + (" (control)" if r["control"] else "")),
    ("requests", lambda r: str(r["requests"])),
    ("errors", lambda r: f"{r['errors']} ({r['error_rate']:.1%})"),
    ("p50 s", lambda r: _num(r["latency_p50_s"])),
    ("p95 s", lambda r: _num(r["latency_p95_s"])),
    ("tokens in/out", lambda r: f"{r['prompt_tokens']}/{r['completion_tokens']}"),
    ("cost", lambda r: f"{r['cost']:.4f}"),
    ("acc/rej/cor", lambda r: "/".join(str(v) for v in r["feedback"].values())),
    ("acceptance", lambda r: _rate(r["acceptance_rate"])),
    ("score", lambda r: _num(r["mean_score"])),
    ("vs control", lambda r: _test(r["vs_control"])),
)


def format_report(report: dict[str, Any]) -> str:
    headers = [name for name, _ in COLUMNS]
    rows = [[cell(v) for _, cell in COLUMNS] for v in report["variants"]]
    widths = [max(len(x) for x in column) for column in zip(headers, *rows, strict=True)]
    lines = [f"experiment {report['experiment']} (applies to {report['applies_to']})"]
    for row in [headers, ["-" * w for w in widths], *rows]:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    return "\n".join(lines)
