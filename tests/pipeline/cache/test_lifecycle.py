"""The cache's long-lived services: one local embedder per process, cache backends kept
across a reload when their config is unchanged, closed when replaced and at shutdown."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.app import create_app
from gateway.cache.lifecycle import cache_backends, shared_embedder
from gateway.cache.memory_store import MemoryVectorStore
from gateway.config import load_config, load_config_text
from gateway.config.schema import GatewayConfig
from gateway.pipeline.build import build_pipeline
from gateway.pipeline.cache import Cache
from gateway.pipeline.route import Route
from gateway.runtime import Runtime
from gateway.state.memory import MemoryState
from tests.servers import RunningServer, serve_in_thread

MODELS = """
providers:
  mock: {kind: mock, mock: {mode: fixed, text: cached answer}}
models:
  m:
    deployments: [{provider: mock, model: m}]
  small:
    deployments: [{provider: mock, model: small}]
"""
CLASSIFIER = """
routes:
  auto:
    default: m
    classifier:
      tiers:
        easy: {target: small, examples: ["hello"]}
"""


def config(cache: str = "", extra: str = "") -> GatewayConfig:
    return load_config_text(MODELS + (f"cache: {cache}\n" if cache else "") + extra)


@pytest.mark.parametrize(
    ("cache", "extra", "wanted"),
    [
        ("", "", False),
        ("{enabled: true}", "", False),  # the exact cache alone embeds nothing
        ("{enabled: true, semantic: {enabled: true}}", "", True),
        ("{enabled: false, semantic: {enabled: true}}", "", False),
        ("", CLASSIFIER, True),
    ],
)
def test_local_embedder_exists_only_when_something_embeds(
    cache: str, extra: str, wanted: bool
) -> None:
    assert (shared_embedder(config(cache, extra), None) is not None) is wanted


async def test_cache_and_classifier_share_one_embedder_across_reloads() -> None:
    both = config("{enabled: true, semantic: {enabled: true}}", CLASSIFIER)
    runtime = Runtime(both)
    await runtime.start()
    try:
        first = runtime.services.embedder
        await runtime.reload(config("{enabled: true, semantic: {enabled: true}}", CLASSIFIER))
        services = runtime.services
        stages = build_pipeline(both, services)
        route = next(s for s in stages if isinstance(s, Route))
        cache = next(s for s in stages if isinstance(s, Cache))
        assert services.embedder is first
        assert route.routers["auto"].classifier.embedder is first
        assert cache.semantic.embedder is first
    finally:
        await runtime.stop()
    assert first._model is None  # nothing was embedded: the model was never loaded


SEMANTIC = "{enabled: true, semantic: {enabled: true, ttl_seconds: 60}}"


@pytest.mark.parametrize(
    ("after", "keeps_exact", "keeps_store"),
    [
        (SEMANTIC, True, True),
        (SEMANTIC.replace("60}", "60, threshold: 0.95}"), True, True),
        ("{enabled: true, exact: {ttl_seconds: 5}, semantic: {enabled: true}}", False, True),
        ("{enabled: true, semantic: {enabled: true, max_entries: 7}}", True, False),
        ("{enabled: true}", True, False),
    ],
)
async def test_reload_reuses_backends_whose_config_is_unchanged(
    after: str, keeps_exact: bool, keeps_store: bool
) -> None:
    state = MemoryState()
    old = cache_backends(config(SEMANTIC).cache, state, None)
    assert old is not None and isinstance(old.store, MemoryVectorStore)
    new = cache_backends(config(after).cache, state, old)
    assert new is not None
    assert (new.exact is old.exact) is keeps_exact
    assert (new.store is old.store) is keeps_store
    assert len(old.closers_replaced_by(new)) == (0 if keeps_store else 1)


async def test_turning_the_cache_off_retires_the_store() -> None:
    old = cache_backends(config(SEMANTIC).cache, MemoryState(), None)
    assert cache_backends(config("{enabled: false}").cache, MemoryState(), old) is None
    assert old is not None and old.closers_replaced_by(None) == [old.store.aclose]


async def test_pgvector_pool_is_closed_at_shutdown(pg_dsn: str, monkeypatch) -> None:
    monkeypatch.setenv("PG_DSN", pg_dsn)
    table = f"t_{uuid.uuid4().hex[:12]}"
    semantic = f"{{enabled: true, backend: pgvector, dsn: '${{PG_DSN}}', table: {table}}}"
    runtime = Runtime(config(f"{{enabled: true, semantic: {semantic}}}"))
    await runtime.start()
    store = runtime.services.cache.store
    pool = await store.pool()
    await runtime.stop()
    assert pool.is_closing()


async def test_pgvector_pool_of_a_replaced_store_is_closed_after_reload(
    pg_dsn: str, monkeypatch
) -> None:
    monkeypatch.setenv("PG_DSN", pg_dsn)
    tables = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    semantic = "{{enabled: true, backend: pgvector, dsn: '${{PG_DSN}}', table: {}}}"
    runtime = Runtime(config(f"{{enabled: true, semantic: {semantic.format(tables[0])}}}"))
    await runtime.start()
    try:
        old_pool = await runtime.services.cache.store.pool()
        await runtime.reload(config(f"{{enabled: true, semantic: {semantic.format(tables[1])}}}"))
        for task in list(runtime.retiring):
            await task
        assert old_pool.is_closing()
        assert not (await runtime.services.cache.store.pool()).is_closing()
    finally:
        await runtime.stop()


def cache_header(url: str, model: str) -> str:
    body = {"model": model, "messages": [{"role": "user", "content": "same question"}]}
    response = httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.headers["x-gateway-cache"]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[RunningServer, Path]]:
    path = tmp_path / "gateway.yaml"
    path.write_text(
        "server:\n  reload: {watch_file: true, poll_seconds: 0.05}\n"
        + MODELS
        + "cache: {enabled: true}\n"
    )
    with serve_in_thread(create_app(load_config(path), config_path=str(path))) as server:
        yield server, path


@pytest.mark.parametrize(
    ("cache_after", "header"),
    [("{enabled: true}", "hit"), ("{enabled: true, exact: {ttl_seconds: 30}}", "miss")],
)
def test_cached_entry_survives_a_reload_that_keeps_the_cache_config(
    watched: tuple[RunningServer, Path], cache_after: str, header: str
) -> None:
    server, path = watched
    runtime = server.server.config.app.state.runtime  # type: ignore[attr-defined]
    assert cache_header(server.url, "m") == "miss"
    assert cache_header(server.url, "m") == "hit"
    extra = "  added:\n    deployments: [{provider: mock, model: added}]\n"
    text = path.read_text().replace("cache: {enabled: true}\n", "")
    path.write_text(text.replace("models:\n", "models:\n" + extra) + f"cache: {cache_after}\n")
    deadline = time.monotonic() + 5
    while "added" not in runtime.config.models and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "added" in runtime.config.models
    assert cache_header(server.url, "m") == header
