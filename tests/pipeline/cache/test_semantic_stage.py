"""The semantic cache in a real gateway with the real all-MiniLM-L6-v2 embedder: hits for
paraphrases, refusals across scopes and when a guard objects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.config import load_config_text
from tests.conftest import upstream_config
from tests.gateway_process import gateway_process
from tests.servers import RunningServer, serve_in_thread
from tests.upstream import FakeUpstream

SECOND_MODEL = """  gpt-other:
    deployments:
      - {provider: up, model: upstream-model}
"""
SEMANTIC = """cache:
  enabled: true
  semantic: {enabled: true, backend: memory}
"""


@pytest.fixture(scope="module")
def semantic_gateway(upstream_server) -> Iterator[RunningServer]:
    """One gateway for the module (the embedding model loads once); tests keep apart by
    unique system prompts or questions."""
    _, server = upstream_server
    app = create_app(load_config_text(upstream_config(server.url, SECOND_MODEL + SEMANTIC)))
    with serve_in_thread(app) as gateway:
        yield gateway


def chat(gateway: RunningServer, text: str, system: str | None = None, **kw: Any) -> str:
    messages = [{"role": "system", "content": system}] if system else []
    body = {
        "model": kw.pop("model", "gpt-test"),
        "messages": [*messages, {"role": "user", "content": text}],
        "temperature": kw.pop("temperature", 0),
        **kw,
    }
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.headers["x-gateway-cache"]


def test_paraphrase_is_served_with_its_similarity(
    semantic_gateway: RunningServer, upstream: FakeUpstream
) -> None:
    system = f"Session {uuid.uuid4().hex}"
    assert chat(semantic_gateway, "What is the tallest mountain in Africa?", system) == "miss"
    header = chat(semantic_gateway, "Which mountain is the highest in Africa?", system)
    assert header.startswith("semantic-hit;similarity=0.")
    assert float(header.split("=")[1]) >= 0.8
    assert len(upstream.requests) == 1
    exposition = httpx.get(f"{semantic_gateway.url}/metrics").text
    hits = [
        line
        for line in exposition.splitlines()
        if line.startswith("gateway_cache_lookups_total{")
        and all(p in line for p in ('kind="semantic"', 'model="gpt-test"', 'result="hit"'))
    ]
    assert hits and float(hits[0].rsplit(" ", 1)[1]) >= 1
    assert "gateway_cache_semantic_similarity_count" in exposition


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("What is the capital of Austria?", "What is the capital of Australia?"),
        ("Convert 10 USD to EUR.", "Convert 100 USD to EUR."),
        ("Is Python a compiled language?", "Is Python not a compiled language?"),
        ('Translate "good morning" to French.', 'Translate "good night" to French.'),
    ],
    ids=["entity", "number", "negation", "quoted"],
)
def test_near_question_with_a_different_answer_is_a_miss(
    semantic_gateway: RunningServer, upstream: FakeUpstream, first: str, second: str
) -> None:
    system = f"Session {uuid.uuid4().hex}"
    chat(semantic_gateway, first, system)
    assert chat(semantic_gateway, second, system) == "miss"
    assert len(upstream.requests) == 2


@pytest.mark.parametrize(
    "change",
    [{"system": "You are a pirate."}, {"model": "gpt-other"}, {"temperature": 0.2}],
    ids=["system-prompt", "model", "sampling"],
)
def test_same_question_in_another_scope_is_a_miss(
    semantic_gateway: RunningServer, upstream: FakeUpstream, change: dict[str, Any]
) -> None:
    question = f"Which mountain is the highest in Africa? ({uuid.uuid4().hex[:6]})"
    chat(semantic_gateway, question, system="You are terse.")
    kw = {"system": "You are terse.", **change}
    assert chat(semantic_gateway, question.replace("Which", "What"), **kw) == "miss"


def test_hot_requests_do_not_qualify(semantic_gateway: RunningServer) -> None:
    system = f"Session {uuid.uuid4().hex}"
    chat(semantic_gateway, "What is the tallest mountain in Africa?", system, temperature=1)
    again = chat(
        semantic_gateway, "Which mountain is the highest in Africa?", system, temperature=1
    )
    assert again == "miss"


def test_pgvector_backend_is_shared_between_two_gateway_processes(
    tmp_path: Path, pg_dsn: str, upstream_server, upstream: FakeUpstream
) -> None:
    _, server = upstream_server
    table = f"semantic_{uuid.uuid4().hex[:10]}"
    extra = f"""cache:
  enabled: true
  semantic: {{enabled: true, backend: pgvector, dsn: "${{PG_DSN}}", table: {table}}}
"""
    config = tmp_path / "gateway.yaml"
    config.write_text(upstream_config(server.url, extra))
    env = {"PG_DSN": pg_dsn, "OPENBLAS_NUM_THREADS": "1"}
    with gateway_process(config, env=env) as first, gateway_process(config, env=env) as second:
        assert chat(first, "What is the tallest mountain in Africa?") == "miss"  # type: ignore[arg-type]
        header = chat(second, "Which mountain is the highest in Africa?")  # type: ignore[arg-type]
        other = chat(second, "What is the tallest mountain in Europe?")  # type: ignore[arg-type]
    assert header.startswith("semantic-hit;similarity=")
    assert other == "miss"
    assert len(upstream.requests) == 2


def test_provider_embedder_and_guards_refuse_even_at_similarity_one(
    start_gateway, upstream_server, upstream: FakeUpstream
) -> None:
    """The fake upstream embeds every text as the same vector: only the guards decide."""
    _, server = upstream_server
    extra = """cache:
  enabled: true
  semantic: {enabled: true, embedder: provider, embedding_model: gpt-test, embedding_dim: 3}
"""
    gateway = start_gateway(upstream_config(server.url, extra))
    assert chat(gateway, "What is the capital of Austria?") == "miss"
    assert chat(gateway, "What is the capital of Australia?") == "miss"
    assert chat(gateway, "what's the capital of Austria?").startswith("semantic-hit;similarity=1")
    embedded = [r["input"] for r in upstream.requests if "input" in r]
    assert embedded == [
        [q]
        for q in (
            "What is the capital of Austria?",
            "What is the capital of Australia?",
            "what's the capital of Austria?",
        )
    ]
