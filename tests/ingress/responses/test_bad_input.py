"""Bad Responses input: a 4xx in OpenAI's error shape naming the problem, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.servers import RunningServer

WEB = {"type": "web_search_preview"}
BAD_BODIES: list[tuple[str, Any, int, str]] = [
    ("not json", b"{nope", 400, "not valid JSON"),
    ("not an object", [1], 400, "JSON object"),
    ("no model", {"input": "hi"}, 400, "'model'"),
    ("no input", {"model": "gpt-test"}, 400, "'input'"),
    (
        "unknown item type",
        {"model": "gpt-test", "input": [{"type": "telepathy"}]},
        400,
        "Unknown input item type 'telepathy'",
    ),
    (
        "output for an unknown call",
        {
            "model": "gpt-test",
            "input": [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}],
        },
        400,
        "call_nope",
    ),
    (
        "unknown previous response",
        {"model": "gpt-test", "input": "hi", "previous_response_id": "resp_missing"},
        404,
        "resp_missing",
    ),
    (
        "built-in tool",
        {"model": "gpt-test", "input": "hi", "tools": [WEB]},
        400,
        "web_search_preview",
    ),
    (
        "include",
        {"model": "gpt-test", "input": "hi", "include": ["file_search_call.results"]},
        400,
        "file_search_call.results",
    ),
    (
        "bad text.format",
        {"model": "gpt-test", "input": "hi", "text": {"format": {"type": "yaml"}}},
        400,
        "text.format",
    ),
    (
        "bad max_output_tokens",
        {"model": "gpt-test", "input": "hi", "max_output_tokens": -1},
        400,
        "max_output_tokens",
    ),
    ("bad role", {"model": "gpt-test", "input": [{"role": "god", "content": "x"}]}, 400, "role"),
    (
        "file part",
        {
            "model": "gpt-test",
            "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}],
        },
        400,
        "input_file",
    ),
    (
        "image by file id",
        {
            "model": "gpt-test",
            "input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}],
        },
        400,
        "image_url",
    ),
    ("bad tool_choice", {"model": "gpt-test", "input": "hi", "tool_choice": 7}, 400, "tool_choice"),
    ("bad stream", {"model": "gpt-test", "input": "hi", "stream": "yes"}, 400, "stream"),
    ("bad metadata", {"model": "gpt-test", "input": "hi", "metadata": {"a": 1}}, 400, "metadata"),
    ("unknown model", {"model": "nope", "input": "hi"}, 404, "nope"),
    ("empty input", {"model": "gpt-test", "input": []}, 400, "input"),
    (
        "huge call id",
        {
            "model": "gpt-test",
            "input": [
                {"type": "function_call", "call_id": "c" * 500, "name": "f", "arguments": "{}"}
            ],
        },
        400,
        "call_id",
    ),
]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
def test_bad_request_is_a_clear_4xx(
    responses_gateway: RunningServer, body: Any, status: int, says: str
) -> None:
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    answer = httpx.post(
        f"{responses_gateway.url}/v1/responses",
        content=content,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == status
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert says in error["message"]


def test_deeply_nested_body_is_400(responses_gateway: RunningServer) -> None:
    nested = "[" * 600 + "]" * 600
    raw = b'{"model": "gpt-test", "input": "hi", "metadata": ' + nested.encode() + b"}"
    answer = httpx.post(f"{responses_gateway.url}/v1/responses", content=raw)
    assert answer.status_code == 400


@pytest.mark.parametrize("query", ["limit=0", "limit=abc", "order=sideways"])
def test_bad_input_items_query_is_400(responses_gateway: RunningServer, query: str) -> None:
    created = httpx.post(
        f"{responses_gateway.url}/v1/responses", json={"model": "gpt-test", "input": "hi"}
    ).json()
    answer = httpx.get(f"{responses_gateway.url}/v1/responses/{created['id']}/input_items?{query}")
    assert answer.status_code == 400


def test_unknown_ids_are_404(responses_gateway: RunningServer) -> None:
    for method, path in [
        ("GET", "/v1/responses/resp_x"),
        ("DELETE", "/v1/responses/resp_x"),
        ("GET", "/v1/responses/resp_x/input_items"),
    ]:
        answer = httpx.request(method, responses_gateway.url + path)
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"


HOSTILE: list[tuple[str, dict[str, Any], str]] = [
    (
        "item type is an object",
        {"model": "gpt-test", "input": [{"type": {"x": "y" * 10_000}}]},
        "dict",
    ),
    (
        "tool type is a long string",
        {"model": "gpt-test", "input": "hi", "tools": [{"type": "z" * 10_000}]},
        "zzz",
    ),
    (
        "previous id with a path",
        {"model": "gpt-test", "input": "hi", "previous_response_id": "../../etc/passwd"},
        "response id",
    ),
    (
        "previous id too long",
        {"model": "gpt-test", "input": "hi", "previous_response_id": "r" * 10_000},
        "response id",
    ),
    (
        "metadata value too long",
        {"model": "gpt-test", "input": "hi", "metadata": {"k": "v" * 600}},
        "metadata",
    ),
]


@pytest.mark.parametrize(("body", "says"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_values_are_refused_short(
    responses_gateway: RunningServer, body: dict[str, Any], says: str
) -> None:
    answer = httpx.post(f"{responses_gateway.url}/v1/responses", json=body)
    assert answer.status_code == 400
    assert says in answer.json()["error"]["message"]
    assert len(answer.content) < 1_000  # the client's value is never echoed whole


def test_hostile_path_ids_are_404_without_echo(responses_gateway: RunningServer) -> None:
    for path in ["/v1/responses/" + "x" * 5000, "/v1/responses/%3Cscript%3E"]:
        answer = httpx.get(responses_gateway.url + path)
        assert answer.status_code == 404
        assert "<script>" not in answer.text and "xxxxxxxx" not in answer.text
