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
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.gateway_process import free_port
from tests.test_operations_metrics import MOCK_CONFIG, drive, samples, value

ROOT = Path(__file__).resolve().parent.parent


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "Dockerfile"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_lock_pins_every_dependency_the_image_installs() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + [
        dep for extra in ("server", "otel") for dep in project["optional-dependencies"][extra]
    ]
    pinned = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pinned[canonicalize_name(name)] = version
    missing = [d for d in wanted if canonicalize_name(Requirement(d).name) not in pinned]
    assert missing == [], "regenerate with scripts/lock_requirements.py"
    unsatisfied = [
        d
        for d in wanted
        if pinned[canonicalize_name(Requirement(d).name)] not in Requirement(d).specifier
    ]
    assert unsatisfied == []


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
