"""GET /v1/models: behind auth when keys are configured, listing only what the key may use;
open in the quickstart. Also: unknown paths are never reflected in the 404."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from tests.access.conftest import KEY_A, KEY_B, KEY_OLD, KEYS_YAML
from tests.servers import RunningServer

ALL_MODELS = {"gpt-test", "mock-small"}


@pytest.fixture
def keyed(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway("auth:" + KEYS_YAML)


def listed(url: str, key: str) -> set[str]:
    sdk = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)
    return {m.id for m in sdk.models.list()}


@pytest.mark.parametrize(
    ("key", "models"),
    [
        (KEY_A, {"gpt-test"}),  # team-a may use gpt-test only
        (KEY_B, ALL_MODELS),  # no model restriction
    ],
)
def test_models_lists_what_the_key_may_use(
    keyed: RunningServer, key: str, models: set[str]
) -> None:
    assert listed(keyed.url, key) == models


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Bearer sk-not-a-key-0123456789"},
        {"authorization": f"Bearer {KEY_OLD}"},  # expired
    ],
)
def test_models_needs_a_valid_key_when_keys_are_configured(
    keyed: RunningServer, headers: dict[str, str]
) -> None:
    reply = httpx.get(f"{keyed.url}/v1/models", headers=headers)
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "authentication_error"
    assert "data" not in reply.json()


def test_models_is_open_in_the_quickstart(make_gateway: Callable[[str], RunningServer]) -> None:
    gateway = make_gateway("")
    assert httpx.get(f"{gateway.url}/v1/models").status_code == 200
    assert listed(gateway.url, "anything") == ALL_MODELS


@pytest.mark.parametrize(
    "path", ["/<script>alert(1)</script>", "/v1/%3Cimg%20src%3Dx%3E", "/admin/../secret-x"]
)
def test_unknown_path_is_not_reflected(
    make_gateway: Callable[[str], RunningServer], path: str
) -> None:
    gateway = make_gateway("")
    reply = httpx.get(gateway.url + path)
    assert reply.status_code == 404
    assert reply.json()["error"] == {
        "message": "Unknown path.",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_found",
    }
