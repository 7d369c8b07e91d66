"""Two gateway instances sharing Redis: a chain alternates instances; keys see only their
own responses."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
import redis

from gateway.auth.keys import hash_key
from tests.ingress.responses.conftest import KEY_A, KEY_B
from tests.redis_keys import drop_prefix, unique_prefix
from tests.servers import RunningServer


@pytest.fixture
def two_instances(
    make_responses_gateway: Callable[[str], RunningServer],
    redis_url: str,
) -> Iterator[tuple[RunningServer, RunningServer]]:
    redis.Redis.from_url(redis_url).ping()  # fails, never skips, without Redis
    prefix = unique_prefix()
    extra = f"""
state: {{backend: redis, redis_url: '{redis_url}', key_prefix: '{prefix}'}}
auth:
  keys:
    - {{id: team-a, hash: "{hash_key(KEY_A)}"}}
    - {{id: team-b, hash: "{hash_key(KEY_B)}"}}
"""
    try:
        yield make_responses_gateway(extra), make_responses_gateway(extra)
    finally:
        drop_prefix(redis_url, prefix)


def client(gateway: RunningServer, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=key, max_retries=0)


def test_a_chain_alternating_instances(two_instances: tuple[RunningServer, RunningServer]) -> None:
    one, two = (client(g, KEY_A) for g in two_instances)
    previous = None
    for turn, api in enumerate([one, two, one, two]):
        if turn % 2:
            with api.responses.stream(
                model="gpt-test", input=f"turn {turn}", previous_response_id=previous
            ) as stream:
                previous = stream.get_final_response().id
        else:
            reply = api.responses.create(
                model="gpt-test", input=f"turn {turn}", previous_response_id=previous
            )
            assert reply.output_text == f"You said: turn {turn} (messages: {2 * turn + 1})"
            previous = reply.id
    assert two.responses.retrieve(previous).previous_response_id is not None


def test_another_key_cannot_read_or_continue(
    two_instances: tuple[RunningServer, RunningServer],
) -> None:
    first, second = two_instances
    owner = client(first, KEY_A)
    created = owner.responses.create(model="gpt-test", input="secret plans")
    intruder = client(second, KEY_B)
    with pytest.raises(openai.NotFoundError):
        intruder.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        intruder.responses.input_items.list(created.id)
    with pytest.raises(openai.NotFoundError):
        intruder.responses.create(model="gpt-test", input="go on", previous_response_id=created.id)
    with pytest.raises(openai.NotFoundError):
        intruder.responses.delete(created.id)
    assert owner.responses.retrieve(created.id).id == created.id  # still there


def test_no_key_is_401(two_instances: tuple[RunningServer, RunningServer]) -> None:
    url = two_instances[0].url
    for method, path in [
        ("GET", "/v1/responses/resp_x"),
        ("DELETE", "/v1/responses/resp_x"),
        ("GET", "/v1/responses/resp_x/input_items"),
    ]:
        answer = httpx.request(method, url + path)
        assert answer.status_code == 401, path
        assert answer.json()["error"]["type"] == "authentication_error"
    answer = httpx.post(url + "/v1/responses", json={"model": "gpt-test", "input": "hi"})
    assert answer.status_code == 401
