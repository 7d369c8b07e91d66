"""The canonical request: one reading of the body for every stage (table tests)."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.request import CanonicalRequest, text_of
from gateway.types import Endpoint

USER = {"role": "user", "content": "newest"}


@pytest.mark.parametrize(
    ("body", "bound", "field"),
    [
        ({}, None, "max_tokens"),
        ({"max_tokens": 10}, 10, "max_tokens"),
        ({"max_completion_tokens": 10}, 10, "max_completion_tokens"),
        ({"max_completion_tokens": 5, "max_tokens": 100000}, 100000, "max_tokens"),
        ({"max_completion_tokens": 100000, "max_tokens": 5}, 100000, "max_completion_tokens"),
        ({"max_completion_tokens": None, "max_tokens": 7}, 7, "max_tokens"),
        ({"max_tokens": True}, None, "max_tokens"),
        ({"max_tokens": 0}, None, "max_tokens"),
    ],
)
def test_output_bound_is_the_largest_field(body: dict, bound: int | None, field: str) -> None:
    request = CanonicalRequest("chat", body)
    assert request.output_bound() == bound
    assert request.output_bound_field() == field


@pytest.mark.parametrize(
    ("body", "ceiling", "expected"),
    [
        ({}, 50, {"max_tokens": 50}),
        (
            {"max_tokens": 100000, "max_completion_tokens": 5},
            50,
            {"max_tokens": 50, "max_completion_tokens": 5},
        ),
        (
            {"max_tokens": 100000, "max_completion_tokens": None},
            50,
            {"max_tokens": 50, "max_completion_tokens": None},
        ),
        ({"max_completion_tokens": 900}, 200, {"max_completion_tokens": 200}),
    ],
)
def test_with_output_bound_clamps_every_present_field(
    body: dict, ceiling: int, expected: dict
) -> None:
    assert CanonicalRequest("chat", body).with_output_bound(ceiling) == expected


@pytest.mark.parametrize(
    ("endpoint", "body", "choices"),
    [
        ("chat", {}, 1),
        ("chat", {"n": 3}, 3),
        ("chat", {"n": None}, 1),
        ("chat", {"best_of": 9}, 1),  # not a Chat Completions field
        ("completions", {"n": 2, "best_of": 5}, 5),
        ("completions", {"n": 4}, 4),
        ("embeddings", {"n": 4}, 1),
    ],
)
def test_choices(endpoint: Endpoint, body: dict, choices: int) -> None:
    assert CanonicalRequest(endpoint, body).choices() == choices


@pytest.mark.parametrize(
    ("endpoint", "body", "text"),
    [
        ("chat", {"messages": [{"role": "system", "content": "s"}, USER]}, "newest"),
        ("chat", {"messages": [USER, {"role": "assistant", "content": "a"}]}, "newest"),
        (
            "chat",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "look"},
                            {"type": "image_url", "image_url": {"url": "data:"}},
                            {"type": "text", "text": "here"},
                        ],
                    }
                ]
            },
            "look\nhere",
        ),
        ("chat", {"messages": "not a list"}, ""),
        ("completions", {"prompt": "p"}, "p"),
        ("completions", {"prompt": ["a", "b"]}, ""),
    ],
)
def test_newest_user_text(endpoint: Endpoint, body: dict[str, Any], text: str) -> None:
    assert CanonicalRequest(endpoint, body).newest_user_text() == text


@pytest.mark.parametrize(
    ("endpoint", "body", "text"),
    [
        ("chat", {"messages": [{"role": "system", "content": "s"}, USER]}, "s\nnewest"),
        ("chat", {"messages": [USER, "junk", None, {"role": "user"}, {"content": 5}]}, "newest"),
        ("chat", {"messages": {"role": "user", "content": "not a list"}}, ""),
        ("completions", {"prompt": ["a", 1, "b"]}, "a\nb"),
        ("completions", {"prompt": {"text": "x"}}, ""),
        ("embeddings", {"input": "e"}, "e"),
        ("embeddings", {"input": [[1, 2, 3]]}, ""),  # token ids: no text
    ],
)
def test_prompt_text_joins_every_input_text_and_skips_the_rest(
    endpoint: Endpoint, body: dict[str, Any], text: str
) -> None:
    assert CanonicalRequest(endpoint, body).prompt_text() == text


@pytest.mark.parametrize(
    ("content", "text"),
    [
        ("plain", "plain"),
        ([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}], "a\nb"),
        ([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}], None),
        ([{"type": "text", "text": 5}], None),
        (["a"], None),
        (None, None),
        ({"type": "text", "text": "a"}, None),
    ],
)
def test_text_of_is_none_unless_every_part_is_text(content: Any, text: str | None) -> None:
    assert text_of(content) == text


@pytest.mark.parametrize(
    ("body", "has_tools", "wants_json", "stream"),
    [
        ({}, False, False, False),
        ({"tools": [{"type": "function"}]}, True, False, False),
        ({"functions": [{"name": "f"}]}, True, False, False),
        ({"tools": []}, False, False, False),
        ({"response_format": {"type": "json_object"}}, False, True, False),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, False, True, False),
        ({"response_format": {"type": "text"}}, False, False, False),
        ({"response_format": "json_object"}, False, False, False),
        ({"stream": True}, False, False, True),
        ({"stream": "true"}, False, False, False),  # only the JSON true streams
    ],
)
def test_tools_response_format_and_stream(
    body: dict[str, Any], has_tools: bool, wants_json: bool, stream: bool
) -> None:
    request = CanonicalRequest("chat", body)
    assert (request.has_tools, request.wants_json, request.stream) == (
        has_tools,
        wants_json,
        stream,
    )


@pytest.mark.parametrize(
    ("body", "metadata"),
    [({}, {}), ({"metadata": {"a": "b"}}, {"a": "b"}), ({"metadata": ["a"]}, {})],
)
def test_metadata_is_a_dict_or_empty(body: dict[str, Any], metadata: dict[str, Any]) -> None:
    assert CanonicalRequest("chat", body).metadata == metadata
