"""`gateway db upgrade|status`, `gateway usage report`, `gateway keys import|export`,
`gateway teams import|export`.

The database URL comes from --database, else $DATABASE_URL, else the config's
`state.database`. Keys move between instances as JSON lines of id, hash, created_at and
policy: the hash only, never a key. Teams move as JSON lines of the admin API's body
(`name` and the YAML's team fields). Imports add what is missing and change nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import sys
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson

CommandRun = Callable[[argparse.Namespace], int]


def add_commands(commands: Any, keys_commands: Any) -> None:
    db = commands.add_parser("db", help="the PostgreSQL system of record")
    db_commands = db.add_subparsers(title="db commands")
    upgrade = db_commands.add_parser("upgrade", help="apply pending schema versions")
    _database_args(upgrade)
    upgrade.set_defaults(run=_sync(run_upgrade))
    status = db_commands.add_parser("status", help="schema versions: applied and pending")
    _database_args(status)
    status.set_defaults(run=_sync(run_status))

    usage = commands.add_parser("usage", help="usage from the ledger")
    usage_commands = usage.add_subparsers(title="usage commands")
    report = usage_commands.add_parser("report", help="totals per key, team, model or day")
    _database_args(report)
    report.add_argument("--from", dest="start", help="ISO date or time (default: 30 days ago)")
    report.add_argument("--to", dest="end", help="ISO date or time (default: now)")
    report.add_argument("--group-by", default="key", choices=["key", "team", "model", "day"])
    report.add_argument("--format", default="table", choices=["table", "csv"])
    report.set_defaults(run=_sync(run_usage_report))

    export = keys_commands.add_parser("export", help="admin-created keys as JSON lines (hashes)")
    _database_args(export)
    export.set_defaults(run=_sync(run_keys_export))
    load = keys_commands.add_parser("import", help="add keys from `keys export` output")
    _database_args(load)
    load.add_argument("path", help="JSON lines file, or - for stdin")
    load.set_defaults(run=_sync(run_keys_import))

    teams = commands.add_parser("teams", help="teams kept in the database")
    teams_commands = teams.add_subparsers(title="teams commands")
    export_teams = teams_commands.add_parser("export", help="database teams as JSON lines")
    _database_args(export_teams)
    export_teams.set_defaults(run=_sync(run_teams_export))
    load_teams = teams_commands.add_parser("import", help="add teams from `teams export` output")
    _database_args(load_teams)
    load_teams.add_argument("path", help="JSON lines file, or - for stdin")
    load_teams.set_defaults(run=_sync(run_teams_import))


def _database_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", help="PostgreSQL URL (default: $DATABASE_URL)")
    parser.add_argument(
        "--config", "-c", default=os.environ.get("GATEWAY_CONFIG"), help="or its state.database"
    )


def _sync(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> CommandRun:
    def run(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(command(args))
        except CommandError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except ModuleNotFoundError as err:
            if err.name != "asyncpg":
                raise
            print("error: needs asyncpg: pip install 'gateway[database]'", file=sys.stderr)
            return 1

    return run


class CommandError(Exception):
    pass


def database_url(args: argparse.Namespace) -> str:
    url = args.database or os.environ.get("DATABASE_URL")
    if url:
        return str(url)
    if args.config:
        from gateway.config import ConfigError, load_config

        try:
            database = load_config(args.config).state.database
        except ConfigError as err:
            raise CommandError(str(err)) from None
        if database is not None:
            return database.get_secret_value()
    raise CommandError("no database: give --database, $DATABASE_URL or a config with one")


@asynccontextmanager
async def connection(args: argparse.Namespace) -> AsyncIterator[Any]:
    from gateway.db.pool import DB_ERRORS, connect

    try:
        conn = await connect(database_url(args))
    except DB_ERRORS as exc:  # the URL (with its password) is never printed
        raise CommandError(f"cannot connect to the database ({type(exc).__name__})") from None
    try:
        yield conn
    finally:
        await conn.close()


async def run_upgrade(args: argparse.Namespace) -> int:
    from gateway.db.migrations import upgrade

    async with connection(args) as conn:
        applied = await upgrade(conn)
    print(f"applied: {', '.join(map(str, applied))}" if applied else "up to date")
    return 0


async def run_status(args: argparse.Namespace) -> int:
    from gateway.db.migrations import pending, status

    async with connection(args) as conn:
        states = await status(conn)
    for state in states:
        print(f"{state.version:>4}  {state.applied_at or 'pending':<32}  {state.name}")
    return 1 if pending(states) else 0


async def run_usage_report(args: argparse.Namespace) -> int:
    from gateway.db.usage import FIELDS, BadUsageQuery, UsageQuery, usage_report

    try:
        query = UsageQuery.parse(args.start, args.end, args.group_by)
    except BadUsageQuery as err:
        raise CommandError(str(err)) from None
    async with connection(args) as conn:
        rows = await usage_report(conn, query)
    header = [query.group_by, *FIELDS]
    table = [[str(row[name]) for name in header] for row in rows]
    if args.format == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(header)
        writer.writerows(table)
        return 0
    widths = [max(len(c) for c in column) for column in zip(header, *table, strict=False)]
    for line in [header, *table]:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
    return 0


async def run_keys_export(args: argparse.Namespace) -> int:
    async with connection(args) as conn:
        rows = await conn.fetch("SELECT record::text AS record FROM api_keys ORDER BY id")
    for row in rows:
        sys.stdout.write(row["record"] + "\n")
    return 0


async def run_keys_import(args: argparse.Namespace) -> int:
    from gateway.db.key_files import parse_key_lines

    text = sys.stdin.read() if args.path == "-" else Path(args.path).read_text(encoding="utf-8")
    try:
        records = parse_key_lines(text)
    except ValueError as err:
        raise CommandError(str(err)) from None
    added = 0
    async with connection(args) as conn, conn.transaction():
        for hexdigest, key_id, record in records:
            done = await conn.execute(
                "INSERT INTO api_keys (digest, id, record) VALUES ($1, $2, $3::jsonb) "
                "ON CONFLICT DO NOTHING",
                hexdigest,
                key_id,
                orjson.dumps(record).decode(),
            )
            added += done == "INSERT 0 1"
    print(f"imported {added} key(s), {len(records) - added} already present")
    await _resync_marker(args)
    return 0


async def run_teams_export(args: argparse.Namespace) -> int:
    async with connection(args) as conn:
        rows = await conn.fetch("SELECT name, policy::text AS policy FROM teams ORDER BY name")
    for row in rows:
        line = {"name": row["name"], **orjson.loads(row["policy"])}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
    return 0


async def run_teams_import(args: argparse.Namespace) -> int:
    text = sys.stdin.read() if args.path == "-" else Path(args.path).read_text(encoding="utf-8")
    teams = parse_team_lines(text)
    added = 0
    async with connection(args) as conn, conn.transaction():
        for name, policy in teams.items():
            done = await conn.execute(
                "INSERT INTO teams (name, policy) VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING",
                name,
                orjson.dumps(policy).decode(),
            )
            added += done == "INSERT 0 1"
    print(f"imported {added} team(s), {len(teams) - added} already present")
    return 0


def parse_team_lines(text: str) -> dict[str, dict[str, Any]]:
    """name -> policy (as stored) per non-empty line; CommandError names the first bad line."""
    from gateway.accounting.teams import BadTeam, parse_team, stored_policy

    teams: dict[str, dict[str, Any]] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            name, team = parse_team(orjson.loads(line))
        except (orjson.JSONDecodeError, BadTeam) as err:
            problem = str(err) if isinstance(err, BadTeam) else "not JSON"
            raise CommandError(f"line {number}: {problem}") from None
        if name in teams:
            raise CommandError(f"line {number}: duplicate team '{name}'")
        teams[name] = stored_policy(team)
    return teams


async def _resync_marker(args: argparse.Namespace) -> None:
    """With a Redis config, make every instance reload its keys on its next miss."""
    if not args.config:
        return
    from gateway.config import load_config
    from gateway.db.keys import SYNCED
    from gateway.state import build_state

    config = load_config(args.config)
    if config.state.backend != "redis":
        print("instances load the new keys when they restart (memory state)")
        return
    state = build_state(config.state)
    try:
        await state.delete(SYNCED)
    finally:
        await state.aclose()
