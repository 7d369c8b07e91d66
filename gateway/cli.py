"""`gateway serve | check | ...`: the command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from gateway.config import ConfigError, load_config
from gateway.db.cli import add_commands as add_database_commands
from gateway.experiments.cli import add_commands as add_experiment_commands


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        argv = ["serve"]  # `gateway` / `python -m gateway` alone runs the quickstart
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    return int(args.run(args) or 0)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description="LLM inference gateway")
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument(
        "--config",
        "-c",
        default=os.environ.get("GATEWAY_CONFIG"),
        help="YAML config (default: $GATEWAY_CONFIG, else the quickstart)",
    )
    serve.add_argument("--host", help="override server.host")
    serve.add_argument("--port", type=int, help="override server.port")
    serve.add_argument("--workers", type=int, help="override server.workers")
    serve.set_defaults(run=run_serve)

    check = commands.add_parser("check", help="validate a config file")
    check.add_argument("path")
    check.set_defaults(run=run_check)
    add_experiment_commands(commands)  # experiments report, eval replay

    cache = commands.add_parser("cache", help="response cache tools")
    cache_commands = cache.add_subparsers(title="cache commands")
    evaluate = cache_commands.add_parser(
        "eval", help="precision/recall of the semantic matcher on labelled pairs"
    )
    evaluate.add_argument(
        "path", nargs="?", help='JSONL of {"a", "b", "same", "kind"} pairs, or dev / heldout'
    )
    evaluate.add_argument("--threshold", type=float, help="similarity to serve (default: shipped)")
    evaluate.set_defaults(run=run_cache_eval)

    keys = commands.add_parser("keys", help="API key tools")
    keys_commands = keys.add_subparsers(title="keys commands")
    create = keys_commands.add_parser(
        "create", help="print a new random key (once) and the hash to put in the YAML"
    )
    create.add_argument("--id", default="my-key", help="the key id for the YAML snippet")
    create.set_defaults(run=run_keys_create)
    add_database_commands(commands, keys_commands)  # db, usage report, keys import/export
    return parser


def run_check(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.path)
    except ConfigError as err:
        print(f"{args.path}: {len(err.problems)} problem(s)", file=sys.stderr)
        for problem in err.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    print(f"{args.path}: ok ({len(config.providers)} providers, {len(config.models)} models)")
    return 0


def run_keys_create(args: argparse.Namespace) -> int:
    from gateway.auth.keys import hash_key, new_key

    key = new_key()
    print(f"key (shown once, give it to the client): {key}")
    print("add to the config under auth.keys:")
    print(f"  - id: {args.id}\n    hash: {hash_key(key)}")
    return 0


def run_cache_eval(args: argparse.Namespace) -> int:
    from gateway.cache.eval import run_eval_command

    return int(run_eval_command(args.path, threshold=args.threshold) or 0)


def run_serve(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 1
    from gateway.serve import serve

    return serve(config, args.config, host=args.host, port=args.port, workers=args.workers)


if __name__ == "__main__":
    sys.exit(main())
