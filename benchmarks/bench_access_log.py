"""The access log's cost per line, side by side in alternating rounds: as it was before
issue 15's stream work (`logging` with a record, every field through the redactor's regex:
`BeforeFormatter`, a copy of that code), `logging` with today's formatter (a regex pass only
when a field may hold something to mask), and `AccessLog` (no LogRecord: observability/logging.py).

Both write to the same kind of handler `gateway serve` sets up (a StreamHandler with the
redacting JSONFormatter, secrets configured), here into /dev/null, with an access-log entry
of the production shape. Prints CPU per line and checks both lines are the same but for
the timestamp.

    .venv/bin/python benchmarks/bench_access_log.py [--lines 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from typing import Any

import orjson

from gateway.observability.logging import _OBJECT_REPR, _RESERVED, AccessLog, JSONFormatter, _opaque
from gateway.observability.redaction import Redactor

ENTRY = {
    "request_id": "9f1c0a2b3c4d4e5f8a9b0c1d2e3f4a5b",
    "endpoint": "chat",
    "model": "bench",
    "deployment": "bench-0",
    "status": 200,
    "stream": True,
    "duration_ms": 512.43,
    "ttft_ms": 1.52,
    "overhead_ms": 0.41,
    "prompt_tokens": 12,
    "completion_tokens": 50,
    "tokens_estimated": False,
    "completed": True,
    "client_ip": "127.0.0.1",
    "key_id": "bench",
    "user": None,
    "team": "bench-team",
}


SECRETS = ["sk-upstream-secret-0123", "admin-secret-99"]


class BeforeFormatter(logging.Formatter):
    """JSONFormatter.format as it was: every field through `Redactor.value`."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        redact = self.redactor
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact.text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _RESERVED or key.startswith("_") or _opaque(value):
                continue
            entry[key] = redact.value(value, key)
        return _OBJECT_REPR.sub(r"<\1>", orjson.dumps(entry, default=str).decode())


def setup(formatter: logging.Formatter | None = None) -> logging.Logger:
    handler = logging.StreamHandler(open("/dev/null", "w"))  # noqa: SIM115
    handler.setFormatter(formatter or JSONFormatter(Redactor(SECRETS)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    return logging.getLogger("gateway.access")


def per_line_us(write: object, lines: int) -> float:
    start = time.process_time()
    for _ in range(lines):
        write()  # type: ignore[operator]
    return (time.process_time() - start) / lines * 1e6


def same_line(logger: logging.Logger) -> bool:
    handler = logging.getLogger().handlers[0]
    formatter = handler.formatter
    assert isinstance(formatter, JSONFormatter)
    record = logger.makeRecord(logger.name, logging.INFO, "", 0, "request", (), None, extra=ENTRY)
    by_logging = orjson.loads(formatter.format(record))
    direct = orjson.loads(formatter.line(record.created, "INFO", logger.name, "request", ENTRY))
    return by_logging == direct


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    logger = setup()
    access = AccessLog(logger)
    before = BeforeFormatter(Redactor(SECRETS))
    today = logging.getLogger().handlers[0].formatter
    variants = {
        "before (logging, regex)": (before, lambda: logger.info("request", extra=ENTRY)),
        "logging, JSONFormatter": (today, lambda: logger.info("request", extra=ENTRY)),
        "AccessLog": (today, lambda: access.info("request", ENTRY)),
    }
    results: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (formatter, write) in variants.items():
            logging.getLogger().handlers[0].setFormatter(formatter)
            results[name].append(per_line_us(write, args.lines))
    base = statistics.median(results["before (logging, regex)"])
    for name, values in results.items():
        median = statistics.median(values)
        print(
            f"{name:22s} {median:6.2f} us/line (rounds {min(values):.2f}-{max(values):.2f})"
            f"  x{median / base:.2f}"
        )
    print("same line (but the timestamp):", same_line(logger))


if __name__ == "__main__":
    main()
