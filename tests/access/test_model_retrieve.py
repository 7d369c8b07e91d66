"""GET /v1/models/{id} (the openai SDK's models.retrieve): the alias or route when the key
may use it; OpenAI's 404 (model_not_found) for an unknown one and for a forbidden one alike."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from tests.access.conftest import KEY_A, KEY_B, KEYS_YAML
from tests.servers import RunningServer

ROUTE = "routes:\n  auto: {default: mock-small}\n"


@pytest.fixture
def keyed(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway("auth:" + KEYS_YAML + ROUTE)


def sdk(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=10)


@pytest.mark.parametrize(("key", "model"), [(KEY_A, "gpt-test"), (KEY_B, "auto")])
def test_retrieve_returns_an_alias_or_route_the_key_may_use(
    keyed: RunningServer, key: str, model: str
) -> None:
    found = sdk(keyed.url, key).models.retrieve(model)
    assert (found.id, found.object, found.owned_by) == (model, "model", "gateway")


@pytest.mark.parametrize(
    "model",
    [
        "mock-small",  # configured, but team-a may use gpt-test only
        "no-such-model",
        "openai/gpt-4o",  # a slash in the id
        "auto",  # a route team-a may not use
    ],
)
def test_unknown_and_forbidden_models_get_the_same_openai_404(
    keyed: RunningServer, model: str
) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        sdk(keyed.url, KEY_A).models.retrieve(model)
    error = info.value.body
    assert isinstance(error, dict)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "model_not_found"
    assert error["param"] == "model"
    assert error["message"] == (
        f"The model '{model}' does not exist or you do not have access to it."
    )


def test_retrieve_needs_a_valid_key(keyed: RunningServer) -> None:
    reply = httpx.get(f"{keyed.url}/v1/models/gpt-test")
    assert reply.status_code == 401
    assert reply.json()["error"]["type"] == "authentication_error"


def test_retrieve_is_open_in_the_quickstart(make_gateway: Callable[[str], RunningServer]) -> None:
    gateway = make_gateway("")
    assert sdk(gateway.url, "any").models.retrieve("mock-small").id == "mock-small"
