"""The suite says what it needs: without Redis, GATEWAY_REQUIRE_REDIS=1 stops the run at
once with one line saying how to start it; without the variable the Redis tests skip with
that line. GATEWAY_REQUIRE_PROMTOOL=1 stops the run at once when promtool is missing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.gateway_process import free_port

ROOT = Path(__file__).resolve().parent.parent
REDIS_TEST = "tests/access/test_ratelimit_reset.py"


def run_pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_REQUIRE_")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", *args]
    return subprocess.run(
        command, cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120
    )


def no_redis() -> dict[str, str]:
    return {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}  # nothing listens there


def test_required_redis_missing_stops_the_run_at_once_with_one_line() -> None:
    result = run_pytest({**no_redis(), "GATEWAY_REQUIRE_REDIS": "1"}, REDIS_TEST)
    assert result.returncode == 1
    assert "GATEWAY_REQUIRE_REDIS=1: Redis is not reachable" in result.stdout + result.stderr
    assert "redis-server --daemonize yes" in result.stdout + result.stderr
    assert "passed" not in result.stdout and "ConnectionRefusedError" not in result.stdout


def test_redis_missing_outside_ci_skips_only_its_tests_with_the_line() -> None:
    result = run_pytest(no_redis(), REDIS_TEST)
    assert result.returncode == 0, result.stdout
    assert "SKIPPED [1]" in result.stdout and "redis-server --daemonize yes" in result.stdout
    assert "2 passed, 1 skipped" in result.stdout


def test_required_promtool_missing_stops_the_run() -> None:
    env = {"GATEWAY_REQUIRE_PROMTOOL": "1", "PATH": str(Path(sys.executable).parent)}
    result = run_pytest(env, REDIS_TEST)  # PATH: the venv only, where promtool is not
    assert result.returncode == 1
    assert "GATEWAY_REQUIRE_PROMTOOL=1: promtool is missing" in result.stdout + result.stderr
