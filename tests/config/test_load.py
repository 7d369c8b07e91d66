"""Config loading: good configs load; each bad one names the key path of its problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, load_config, load_config_text
from gateway.config.access import BudgetConfig

GOOD = """
providers:
  openai:
    kind: openai
    base_url: https://api.openai.com/v1
    api_key: ${OPENAI_API_KEY}
  mock: {kind: mock}
models:
  smart:
    deployments:
      - {provider: openai, model: gpt-4o, weight: 3}
      - {provider: mock, model: m}
"""


def test_good_config_loads_with_env_secret() -> None:
    config = load_config_text(GOOD, env={"OPENAI_API_KEY": "sk-real"})
    provider = config.providers["openai"]
    assert provider.api_key is not None
    assert provider.api_key.get_secret_value() == "sk-real"
    assert "sk-real" not in repr(config)
    assert config.models["smart"].deployments[0].weight == 3


def test_env_default_is_used_when_variable_missing() -> None:
    text = GOOD.replace("${OPENAI_API_KEY}", "${OPENAI_API_KEY:-sk-default}")
    config = load_config_text(text, env={})
    assert config.providers["openai"].api_key.get_secret_value() == "sk-default"  # type: ignore[union-attr]


def test_quickstart_config_loads() -> None:
    config = load_config()
    assert config.state.backend == "memory"
    assert all(p.kind == "mock" for p in config.providers.values())


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (GOOD.replace("${OPENAI_API_KEY}", "sk-literal"), "providers.openai.api_key: secrets must"),
        (
            GOOD.replace("provider: mock,", "provider: mokc,"),
            "models.smart.deployments[1].provider: unknown provider 'mokc'",
        ),
        (GOOD.replace("weight: 3", "weight: -1"), "models.smart.deployments[0].weight"),
        (GOOD + "\nextra_section: 1\n", "extra_section: unknown key"),
        (GOOD.replace("kind: openai", "kind: opnai"), "providers.openai.kind"),
        (
            GOOD.replace("base_url: https://api.openai.com/v1", "colour: blue"),
            "providers.openai.colour: unknown key",
        ),
        ("models: [1, 2]", "models: Input should be a valid dictionary"),
        ("server: {port: 99999}", "server.port"),
        ("- a\n- b", "<root>: expected a mapping"),
        ("a: [", "YAML syntax"),
    ],
)
def test_bad_configs_name_the_key_path(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(yaml_text, env={"OPENAI_API_KEY": "x"})
    assert any(expected in problem for problem in info.value.problems), info.value.problems


def test_missing_env_variable_is_reported_with_path() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text(GOOD, env={})
    assert info.value.problems == [
        "providers.openai.api_key: environment variable OPENAI_API_KEY is not set"
    ]


@pytest.mark.parametrize("path", sorted(Path("config").glob("*.yaml")), ids=str)
def test_shipped_example_configs_stay_valid(path: Path) -> None:
    env = {"OPENAI_API_KEY": "k1", "ANTHROPIC_API_KEY": "k2", "GATEWAY_ADMIN_KEY": "k3"}
    config = load_config_text(path.read_text(), env={**env, "TEAM_KEY": "k4"})
    assert config.models


@pytest.mark.parametrize("field", sorted(BudgetConfig.model_fields))
def test_a_budget_with_any_one_field_is_not_empty(field: str) -> None:
    assert BudgetConfig().empty
    assert not BudgetConfig(**{field: 1}).empty
