"""`gateway experiments report NAME` and `gateway eval replay FILE --variants a,b`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx

from gateway.config import ConfigError, load_config

Commands = Any  # argparse's private _SubParsersAction


def add_commands(commands: Commands) -> None:
    experiments = commands.add_parser("experiments", help="A/B experiment results")
    sub = experiments.add_subparsers(title="experiment commands")
    report = sub.add_parser("report", help="per-variant results of one experiment")
    report.add_argument("name")
    _target_options(report)
    report.add_argument("--json", action="store_true", help="print the JSON report")
    report.set_defaults(run=run_report)

    evals = commands.add_parser("eval", help="offline evaluations")
    eval_sub = evals.add_subparsers(title="eval commands")
    replay = eval_sub.add_parser("replay", help="send a scenario file through variants")
    replay.add_argument("file", type=Path)
    replay.add_argument("--variants", required=True, help="comma-separated aliases or variants")
    replay.add_argument(
        "--experiment",
        help="the variants are this experiment's, forced (the key needs may_force_variant)",
    )
    replay.add_argument("--api-key", default=os.environ.get("GATEWAY_API_KEY", "none"))
    _target_options(replay)
    replay.set_defaults(run=run_replay)


def _target_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", default=os.environ.get("GATEWAY_CONFIG"))
    parser.add_argument("--url", help="a running gateway, e.g. http://127.0.0.1:8080")
    parser.add_argument("--admin-key", default=os.environ.get("GATEWAY_ADMIN_KEY"))


def _config(path: str | None):  # type: ignore[no-untyped-def]
    try:
        return load_config(path)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return None


def run_report(args: argparse.Namespace) -> int:
    from gateway.experiments.report import format_report

    report = _report_from_url(args) if args.url else _report_from_state(args)
    if report is None:
        return 1
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _report_from_url(args: argparse.Namespace) -> dict[str, Any] | None:
    headers = {"authorization": f"Bearer {args.admin_key}"} if args.admin_key else {}
    answer = httpx.get(f"{args.url.rstrip('/')}/admin/experiments/{args.name}", headers=headers)
    if answer.status_code != 200:
        print(f"{answer.status_code}: {answer.text}", file=sys.stderr)
        return None
    return dict(answer.json())


def _report_from_state(args: argparse.Namespace) -> dict[str, Any] | None:
    from gateway.experiments.report import build_report
    from gateway.experiments.store import ExperimentStore
    from gateway.state import build_state

    config = _config(args.config)
    if config is None:
        return None
    experiment = config.experiments.get(args.name)
    if experiment is None:
        print(f"no experiment named '{args.name}' in the config", file=sys.stderr)
        return None
    if config.state.backend != "redis":
        print(
            "state.backend is memory: its counters live in the server; use --url", file=sys.stderr
        )
        return None

    async def read() -> dict[str, Any]:
        state = build_state(config.state)
        try:
            return await build_report(ExperimentStore(state), args.name, experiment)
        finally:
            await state.aclose()

    return asyncio.run(read())


def run_replay(args: argparse.Namespace) -> int:
    from gateway.dispatch.prices import price_book
    from gateway.experiments.replay import format_comparison, load_scenarios, replay

    config = _config(args.config) if args.config else None
    url = args.url or (f"http://{config.server.host}:{config.server.port}" if config else None)
    if url is None:
        print("give --url (or --config of the running gateway)", file=sys.stderr)
        return 2
    model = None
    if args.experiment:
        if config is None or args.experiment not in config.experiments:
            print(f"--experiment needs --config that defines '{args.experiment}'", file=sys.stderr)
            return 2
        model = config.experiments[args.experiment].applies_to
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    scenarios = load_scenarios(args.file)
    headers = {"authorization": f"Bearer {args.api_key}"}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        tallies = replay(
            client,
            scenarios,
            variants,
            experiment_model=model,
            prices=price_book(config) if config else None,
        )
    print(format_comparison(tallies))
    return 0
