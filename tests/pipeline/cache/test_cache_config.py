"""The `cache:` config section: defaults, and each mistake named by its key path."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config_text

MODELS = """providers: {p: {kind: mock}}
models: {m: {deployments: [{provider: p, model: x}]}}
"""


def test_defaults_keep_the_cache_off_and_exact_first() -> None:
    cache = load_config_text(MODELS).cache
    assert not cache.enabled and cache.exact.enabled and not cache.semantic.enabled
    assert cache.exact.scope == "key" and not cache.hits_count_tokens


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("cache: {exact: {scope: everyone}}", "cache.exact.scope"),
        ("cache: {exact: {ttl_seconds: 0}}", "cache.exact.ttl_seconds"),
        ("cache: {semantic: {colour: blue}}", "cache.semantic.colour: unknown key"),
        ("cache: {semantic: {enabled: true, backend: pgvector}}", "dsn is required"),
        (
            'cache: {semantic: {enabled: true, backend: pgvector, dsn: "postgresql://u:pw@h/d"}}',
            "cache.semantic.dsn: secrets must not be written",
        ),
        ("cache: {semantic: {enabled: true, embedder: provider}}", "embedding_model is required"),
        (
            "cache: {semantic: {enabled: true, embedder: provider, embedding_model: nope}}",
            "cache.semantic.embedding_model: unknown model alias 'nope'",
        ),
        ("cache: {semantic: {table: 'x; drop table y'}}", "cache.semantic.table"),
    ],
)
def test_mistakes_are_named_by_key(yaml_text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(MODELS + yaml_text)
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_model_switch_and_env_dsn() -> None:
    text = MODELS.replace("model: x}]}", "model: x}], cache: false}") + (
        'cache: {semantic: {enabled: true, backend: pgvector, dsn: "${PG_DSN}"}}'
    )
    config = load_config_text(text, env={"PG_DSN": "postgresql://u:pw@h/d"})
    assert config.models["m"].cache is False
    assert config.cache.semantic.dsn is not None
    assert "pw" not in repr(config.cache.semantic)
