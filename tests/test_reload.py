"""Config hot reload: file watch, SIGHUP and POST /admin/reload; bad configs never land."""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from gateway.app import create_app
from gateway.config import load_config, load_config_text
from gateway.generations import InFlight, retire_when_idle, reuse_providers
from gateway.providers.registry import build_provider
from tests.gateway_process import gateway_process
from tests.observability.test_metrics import samples, value
from tests.servers import RunningServer, serve_in_thread

MESSAGES = [{"role": "user", "content": "hi"}]


def config_text(text: str, *, extra_model: bool = False, reload: str = "", auth: str = "") -> str:
    second = "  second:\n    deployments: [{provider: steady, model: m}]\n" if extra_model else ""
    return f"""
server:
  reload: {{{reload}}}
{auth}
providers:
  steady: {{kind: mock, mock: {{mode: fixed, text: steady, chunks: 4, chunk_delay_ms: 5}}}}
  changing: {{kind: mock, mock: {{mode: fixed, text: {text}, chunks: 4, chunk_delay_ms: 50}}}}
models:
  first:
    deployments: [{{provider: changing, model: m}}]
  steady:
    deployments: [{{provider: steady, model: m}}]
{second}"""


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text("old", reload="watch_file: true, poll_seconds: 0.05"))
    app = create_app(load_config(path), config_path=str(path))
    with serve_in_thread(app) as server:
        yield server, path


def ask(url: str, model: str, stream: bool) -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="k", max_retries=0, timeout=10)
    if stream:
        chunks = client.chat.completions.create(model=model, messages=MESSAGES, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reply = client.chat.completions.create(model=model, messages=MESSAGES)
    return reply.choices[0].message.content or ""


def test_file_change_swaps_config_under_load_without_a_failed_request(
    served: tuple[RunningServer, Path],
) -> None:
    server, path = served
    runtime = server.server.config.app.state.runtime  # type: ignore[attr-defined]
    steady_before = runtime.services.providers["steady"]
    failures: list[BaseException] = []
    answers: list[str] = []
    stop = threading.Event()

    def load(stream: bool) -> None:
        while not stop.is_set():
            try:
                answers.append(ask(server.url, "first", stream))
            except BaseException as exc:  # every failure counts, whatever its kind
                failures.append(exc)

    workers = [threading.Thread(target=load, args=(i % 2 == 0,)) for i in range(6)]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 5
    while len(answers) < 12 and time.monotonic() < deadline:
        time.sleep(0.02)
    path.write_text(
        config_text("new", extra_model=True, reload="watch_file: true, poll_seconds: 0.05")
    )
    deadline = time.monotonic() + 5
    while "second" not in runtime.config.models and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    stop.set()
    for worker in workers:
        worker.join(15)
    assert failures == []
    assert {"old", "new"} <= set(answers)  # streams begun before the swap ended on the old
    assert ask(server.url, "second", stream=False) == "steady"
    assert runtime.services.providers["steady"] is steady_before  # its pool was kept
    metrics = samples(httpx.get(f"{server.url}/metrics").text)
    assert value(metrics, "gateway_config_reloads_total", trigger="file", result="success") == 1


def test_sighup_with_invalid_config_keeps_the_running_one(tmp_path: Path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text("old"))
    with gateway_process(path) as gw:
        path.write_text(config_text("old").replace("models:", "modles:"))
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while "config reload rejected" not in gw.logs() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "modles: unknown key" in gw.logs()
        assert ask(gw.url, "first", stream=False) == "old"
        metrics = samples(httpx.get(f"{gw.url}/metrics").text)
        assert value(metrics, "gateway_config_reloads_total", result="invalid") == 1

        path.write_text(config_text("new"))
        gw.signal(signal.SIGHUP)
        deadline = time.monotonic() + 5
        while ask(gw.url, "first", stream=False) != "new" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ask(gw.url, "first", stream=True) == "new"


@pytest.mark.parametrize(
    ("admin_key", "sent", "status"),
    [
        (None, "anything", 403),  # no admin key: the admin API is disabled
        ("adm-secret-key-1", None, 401),
        ("adm-secret-key-1", "wrong", 401),
        ("adm-secret-key-1", "adm-secret-key-1", 200),
    ],
)
def test_admin_reload_requires_the_admin_key(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    admin_key: str | None,
    sent: str | None,
    status: int,
) -> None:
    auth = ""
    if admin_key is not None:
        monkeypatch.setenv("GW_ADMIN_KEY", admin_key)
        auth = "auth: {admin_key: '${GW_ADMIN_KEY}'}"
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text("old", auth=auth))
    app = create_app(load_config(path), config_path=str(path))
    headers = {"authorization": f"Bearer {sent}"} if sent else {}
    with serve_in_thread(app) as server:
        reply = httpx.post(f"{server.url}/admin/reload", headers=headers)
    assert reply.status_code == status
    if status == 200:
        assert reply.json() == {"reloaded": True, "problems": []}
    else:
        assert "error" in reply.json()


def test_admin_reload_reports_problems_of_an_invalid_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GW_ADMIN_KEY", "adm-secret-key-1")
    auth = "auth: {admin_key: '${GW_ADMIN_KEY}'}"
    path = tmp_path / "gateway.yaml"
    path.write_text(config_text("old", auth=auth))
    app = create_app(load_config(path), config_path=str(path))
    with serve_in_thread(app) as server:
        path.write_text(config_text("old", auth=auth).replace("provider: changing", "provider: x"))
        reply = httpx.post(
            f"{server.url}/admin/reload", headers={"authorization": "Bearer adm-secret-key-1"}
        )
        assert app.state.runtime.config.models["first"].deployments[0].provider == "changing"
    assert reply.status_code == 422
    assert any("unknown provider 'x'" in p for p in reply.json()["problems"])


async def test_old_pipeline_leftovers_close_only_after_its_last_request() -> None:
    in_flight = InFlight()
    in_flight.enter()
    closed: list[str] = []

    async def close() -> None:
        closed.append("provider")

    retiring = retire_when_idle(in_flight, [close])
    await asyncio.sleep(0.05)
    assert closed == []  # a request still runs on the old pipeline
    in_flight.leave()
    await asyncio.wait_for(retiring, 1)
    assert closed == ["provider"]


def test_only_changed_or_new_providers_are_rebuilt() -> None:
    old = load_config_text(config_text("old"))
    new = load_config_text(config_text("new"))  # `changing` changed, `steady` did not
    running = {name: build_provider(name, p) for name, p in old.providers.items()}
    providers = reuse_providers(old, running, new)
    assert providers["steady"] is running["steady"]
    assert providers["changing"] is not running["changing"]
