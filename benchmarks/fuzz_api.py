"""Fuzz the HTTP API of a real gateway process with hypothesis-generated hostile requests.

Starts `python -m gateway serve` (mock provider + an OpenAI-compatible local upstream,
keys with and without `may_force_variant`, an experiment; hostile_surfaces.keyed_yaml),
then sends --cases generated OpenAI bodies (invalid JSON, wrong types, huge or negative
numbers, deep nesting, long strings, invalid UTF-8, odd content types, `n`, both
`max_tokens` fields; tests/hardening/hostile.py), --surface-cases requests to
/v1/responses, /v1/messages, count_tokens, /v1/feedback and chat with every key and
hostile `x-gateway-variant` values (tests/hardening/hostile_surfaces.py), and
--header-cases raw requests with hostile header lines (CR/LF, NUL, duplicates, lying
lengths). The promise: never a 5xx, a hang or a crash; every error is in the endpoint's
format (Anthropic's for /v1/messages, else OpenAI's); the gateway still answers a valid
request at the end. Prints the counts by endpoint and status and every failure; exits 1
on any failure.

    .venv/bin/python benchmarks/fuzz_api.py [--cases 10000] [--surface-cases 5000]
        [--header-cases 1000] [--redis redis://127.0.0.1:6379/0]

With --redis the gateway keeps its state (limits, feedback, experiment counters, stored
responses) in that Redis under a fresh key prefix, removed afterwards.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.strategies import SearchStrategy  # noqa: E402

from benchmarks.common import Processes, free_port, gateway_argv, wait_for_health  # noqa: E402
from tests.hardening import rawserver as raw  # noqa: E402
from tests.hardening.clients import raw_post  # noqa: E402
from tests.hardening.harness import UPSTREAM_KEY  # noqa: E402
from tests.hardening.hostile import HostileRequest, check_answer, hostile_requests  # noqa: E402
from tests.hardening.hostile_surfaces import (  # noqa: E402
    ADMIN_KEY,
    KEY_POLICIES,
    KNOWN_REQUEST_ID,
    keyed_yaml,
    surface_requests,
)
from tests.redis_keys import drop_prefix  # noqa: E402

VALID = b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}'
WIDE_KEY = next(key for key, (key_id, _, _) in KEY_POLICIES.items() if key_id == "wide")
AUTH = f"authorization: Bearer {WIDE_KEY}".encode()
HEADER_ATOMS = [
    b"\r",
    b"\n",
    b"\r\n",
    b"\x00",
    b":",
    b" ",
    b"\t",
    b"a",
    b"x-request-id",
    b"content-length",
    b"transfer-encoding",
    b"chunked",
    b"authorization",
    b"Bearer k",
    b"host",
    b"-1",
    b"99999",
    b"\xff",
    b"\xc3\xa9",
    b"content-type",
    b"application/json",
    b",",
]
header_lines = st.lists(
    st.lists(st.sampled_from(HEADER_ATOMS), min_size=1, max_size=8).map(b"".join),
    min_size=1,
    max_size=4,
)


class Tally:
    def __init__(self) -> None:
        self.statuses: collections.Counter[str] = collections.Counter()
        self.failures: list[str] = []
        self.slowest = 0.0

    def record(self, label: str, seconds: float, problem: str | None) -> None:
        self.statuses[label] += 1
        self.slowest = max(self.slowest, seconds)
        if problem is not None:
            self.failures.append(problem)


def fuzz_bodies(
    base: str, strategy: SearchStrategy[HostileRequest], cases: int, tally: Tally
) -> None:
    if cases < 1:
        return
    client = httpx.Client(base_url=base, timeout=10)

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[settings.default.phases[2]],  # generate only: count, never shrink
    )
    @given(request=strategy)
    def run(request: HostileRequest) -> None:
        started = time.perf_counter()
        try:
            response = client.post(request.path, content=request.body, headers=request.headers())
        except httpx.HTTPError as exc:
            tally.record("no answer", 0, f"{request!r}: {exc!r}")
            return
        content_type = response.headers.get("content-type", "")
        problem = check_answer(
            response.status_code, content_type, response.content, request.endpoint
        )
        tally.record(
            f"{request.endpoint} {response.status_code}",
            time.perf_counter() - started,
            None if problem is None else f"{request!r}: {problem}",
        )

    run()


def fuzz_headers(port: int, cases: int, tally: Tally) -> None:
    if cases < 1:
        return

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        phases=[settings.default.phases[2]],
    )
    @given(lines=header_lines)
    def run(lines: list[bytes]) -> None:
        started = time.perf_counter()
        request = raw_post("/v1/chat/completions", VALID, [AUTH, *lines])
        try:
            status, body = exchange_status(port, request)
        except OSError as exc:
            tally.record("no answer", 0, f"{lines!r}: {exc!r}")
            return
        problem = f"{lines!r}: {status} {body[:200]!r}" if status >= 500 else None
        tally.record(f"hdr {status}", time.perf_counter() - started, problem)

    run()


def exchange_status(port: int, request: bytes) -> tuple[int, bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        return 0, b""  # closed without an answer: allowed for unparseable requests
    return int(data.split(b" ", 2)[1]), data


def link_feedback_ids(base: str) -> None:
    """One experiment request per key under the id feedback cases name, so some feedback
    finds its link (the others are unknown ids: 404)."""
    for key in KEY_POLICIES:
        headers = {"authorization": f"Bearer {key}", "x-request-id": KNOWN_REQUEST_ID}
        reply = httpx.post(f"{base}/v1/chat/completions", content=VALID, headers=headers)
        assert reply.status_code == 200, reply.text


@dataclasses.dataclass
class Aftermath:
    """What holds after the fuzzing: the process lives and still answers."""

    alive: bool
    final_status: int
    report_status: int
    tracebacks: int

    @property
    def ok(self) -> bool:
        answered = self.final_status == self.report_status == 200
        return self.alive and answered and not self.tracebacks


def fuzz_gateway(args: argparse.Namespace, state: str, tally: Tally) -> Aftermath:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, raw.raw_upstream(raw.always_ok()) as upstream:
        config = Path(tmp) / "gateway.yaml"
        yaml = keyed_yaml(upstream.url, state)
        config.write_text(yaml.replace("level: debug", "level: warning"))
        with Processes(Path(tmp)) as procs:
            env = {"UPSTREAM_KEY": UPSTREAM_KEY, "FUZZ_ADMIN_KEY": ADMIN_KEY}
            gateway = procs.start("gateway", gateway_argv(config, port), port, None, env)
            wait_for_health(gateway)
            base = f"http://127.0.0.1:{port}"
            link_feedback_ids(base)
            with_key = hostile_requests.map(lambda r: dataclasses.replace(r, key=WIDE_KEY))
            fuzz_bodies(base, with_key, args.cases, tally)
            fuzz_bodies(base, surface_requests(), args.surface_cases, tally)
            fuzz_headers(port, args.header_cases, tally)
            alive = gateway.popen.poll() is None
            wide = {"authorization": f"Bearer {WIDE_KEY}"}
            final = httpx.post(f"{base}/v1/chat/completions", content=VALID, headers=wide)
            admin = {"authorization": f"Bearer {ADMIN_KEY}"}  # the report reads every feedback
            report = httpx.get(f"{base}/admin/experiments/ab", headers=admin)
            log = gateway.log.read_text(errors="replace")
    return Aftermath(alive, final.status_code, report.status_code, log.count("Traceback"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="generated bodies")
    parser.add_argument("--surface-cases", type=int, default=5_000, help="other surfaces")
    parser.add_argument("--header-cases", type=int, default=1_000, help="raw header cases")
    parser.add_argument("--redis", help="keep the gateway's state in this Redis URL")
    args = parser.parse_args()
    tally = Tally()
    prefix = f"fuzz:{uuid.uuid4().hex}:"
    state = f"{{backend: redis, redis_url: '{args.redis}', key_prefix: '{prefix}'}}"
    started = time.perf_counter()
    try:
        after = fuzz_gateway(args, state if args.redis else "", tally)
    finally:
        if args.redis:
            drop_prefix(args.redis, prefix)
    elapsed = time.perf_counter() - started
    total = sum(tally.statuses.values())
    print(f"{total} cases in {elapsed:.1f} s (slowest answer {tally.slowest * 1000:.0f} ms)")
    for label, count in sorted(tally.statuses.items()):
        print(f"  {label:>16}  {count}")
    print(
        f"gateway alive: {after.alive}; valid request afterwards: {after.final_status}; "
        f"experiment report: {after.report_status}; tracebacks in its log: {after.tracebacks}"
    )
    for failure in tally.failures[:20]:
        print("FAIL", failure[:500])
    print(f"failures: {len(tally.failures)}")
    return 0 if after.ok and not tally.failures else 1


if __name__ == "__main__":
    sys.exit(main())
