"""Hostile input over the real HTTP API: always a 4xx in the endpoint's error format
(OpenAI's; Anthropic's for /v1/messages) or a well-formed success, never a 5xx, a hang or
a crash; a valid request works afterwards. Covers the OpenAI endpoints, /v1/responses,
/v1/messages, /v1/feedback and forced experiment variants (x-gateway-variant)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings

from tests.hardening import rawserver as raw
from tests.hardening.clients import exchange, raw_post
from tests.hardening.harness import (
    CHAT,
    Gateway,
    assert_openai_error,
    gateway_before,
    running_gateway,
    still_serves,
)
from tests.hardening.hostile import HostileRequest, check_answer, hostile_requests
from tests.hardening.hostile_surfaces import (
    ADMIN_KEY,
    KEY_POLICIES,
    KNOWN_REQUEST_ID,
    keyed_yaml,
    surface_requests,
)

BODY_LIMIT = 65536  # server.max_body_bytes in gateway_yaml
VALID = b'{"model": "mock-small", "messages": [{"role": "user", "content": "hi"}]}'
VALID_UP = VALID.replace(b"mock-small", b"up")


@pytest.fixture(scope="module")
def gw() -> Iterator[Gateway]:
    with gateway_before(raw.always_ok()) as (_, gateway):
        yield gateway
        still_serves(gateway.url)


@pytest.fixture(scope="module")
def client(gw: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gw.url, timeout=5) as c:
        yield c


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=hostile_requests)
def test_generated_requests_never_get_a_5xx_or_a_malformed_answer(
    client: httpx.Client, request: HostileRequest
) -> None:
    response = client.post(request.path, content=request.body, headers=request.headers())
    problem = check_answer(response.status_code, response.headers["content-type"], response.content)
    assert problem is None, (request, problem)


def _nested(depth: int, model: bytes = b"up") -> bytes:
    return (
        VALID.replace(b"mock-small", model)[:-1] + b', "x": ' + b"[" * depth + b"]" * depth + b"}"
    )


# body, status, a word the message must contain
BAD_BODIES = [
    pytest.param(b"", 400, "empty", id="empty"),
    pytest.param(b"{", 400, "not valid JSON", id="cut-json"),
    pytest.param(b"[1]", 400, "JSON object", id="array"),
    pytest.param(
        b'{"model": "mock-small", "messages": [{"role": "\xff"}]}', 400, "JSON", id="utf8"
    ),
    pytest.param(VALID[:-1] + b', "n": 1e400}', 400, "JSON", id="infinite-float"),
    pytest.param(VALID[:-1] + b', "max_tokens": -5}', 400, "max_tokens", id="negative"),
    pytest.param(VALID[:-1] + b', "max_tokens": 1.5}', 400, "max_tokens", id="float-int"),
    pytest.param(VALID[:-1] + b', "max_tokens": true}', 400, "max_tokens", id="bool-int"),
    pytest.param(VALID[:-1] + b', "stream": "yes"}', 400, "stream", id="stream-str"),
    pytest.param(_nested(5000), 400, "JSON", id="nested-5000"),
    pytest.param(_nested(300), 400, "nested", id="nested-300-openai"),
    pytest.param(_nested(300, b"mock-small"), 400, "nested", id="nested-300-mock"),
    pytest.param(b'{"model": "mock-small", "prompt": 5}', 400, "prompt", id="prompt-int"),
    pytest.param(b'{"model": "mock-small", "prompt": true}', 400, "prompt", id="prompt-bool"),
    pytest.param(b'{"model": "mock-small", "input": 5}', 400, "input", id="input-int"),
    pytest.param(b'{"model": ["up"], "messages": []}', 400, "model", id="model-list"),
    pytest.param(b'{"model": "nope", "messages": [{"role": "user"}]}', 404, "nope", id="unknown"),
    pytest.param(b"x" * (BODY_LIMIT + 1), 413, "limit", id="oversized"),
]
ENDPOINT_OF = {"prompt-int": "/v1/completions", "prompt-bool": "/v1/completions"}
ENDPOINT_OF["input-int"] = "/v1/embeddings"


@pytest.mark.parametrize(("body", "status", "word"), BAD_BODIES)
def test_bad_body_gets_a_clear_4xx(
    client: httpx.Client, request: pytest.FixtureRequest, body: bytes, status: int, word: str
) -> None:
    path = ENDPOINT_OF.get(request.node.callspec.id, CHAT)
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    error = assert_openai_error(response, status)
    assert word.lower() in error["message"].lower(), error


def test_long_strings_under_the_limit_are_served(client: httpx.Client) -> None:
    text = "a" * (BODY_LIMIT - 200)
    body = {"model": "mock-small", "messages": [{"role": "user", "content": text}]}
    response = client.post(CHAT, json=body)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == text


def test_oversized_chunked_body_without_length_is_413(gw: Gateway) -> None:
    chunk = b"x" * 8192
    wire = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(10)) + b"0\r\n\r\n"
    status, _, body = exchange(
        gw.server.port, raw_post(CHAT, wire, [b"transfer-encoding: chunked"])
    )
    assert status == 413
    assert orjson.loads(body)["error"]["type"] == "invalid_request_error"


# header lines, statuses allowed; the app never sees some of these (the HTTP parser
# answers them itself, as plain text): for those only "4xx and the server lives" holds
HEADER_TRICKS = [
    pytest.param([b"content-type: application/json", b"x-request-id: a\rb"], 400, id="cr-in-value"),
    pytest.param([b"x-request-id: a\nb: c"], (200, 400), id="lf-splits-header"),
    pytest.param([b"x-request-id: a\x00b"], 400, id="nul-in-value"),
    pytest.param([b"content-length: 5", b"content-length: 7"], 400, id="two-lengths"),
    pytest.param([b"content-length: -1"], 400, id="negative-length"),
    pytest.param([b"content-length: 99999999999999999999"], (400, 413), id="huge-length"),
    pytest.param([b"x-request-id: one", b"x-request-id: two"], 200, id="two-request-ids"),
    pytest.param([b"authorization: Bearer a", b"authorization: Bearer b"], 200, id="two-auth"),
    pytest.param([b"content-type: text/plain", b"content-type: image/png"], 200, id="two-types"),
    pytest.param([b"x-long: " + b"a" * 60000], (200, 400, 431), id="long-header"),
    pytest.param([b"bad header: x"], 400, id="space-in-name"),
    pytest.param([b"x-request-id: \xff\xfe"], 200, id="latin1-value"),
]


@pytest.mark.parametrize(("lines", "status"), HEADER_TRICKS)
def test_header_tricks_get_a_4xx_or_are_harmless(
    gw: Gateway, lines: list[bytes], status: int | tuple[int, ...]
) -> None:
    allowed = status if isinstance(status, tuple) else (status,)
    got, headers, body = exchange(gw.server.port, raw_post(CHAT, VALID, lines))
    assert got in allowed, (got, body[:200])
    if got == 200:
        assert headers["x-request-id"] not in ("one,two", "two,one")
        assert "\n" not in headers["x-request-id"]
    elif headers.get("content-type", "").startswith("application/json"):
        assert set(orjson.loads(body)["error"]) == {"message", "type", "param", "code"}
    still_serves(gw.url)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", CHAT, 405),
        ("PUT", "/v1/embeddings", 405),
        ("DELETE", "/v1/models", 405),
        ("POST", "/v1/chat/completions/../../admin", 404),
        ("POST", "/v1/nope", 404),
        ("GET", "/%2e%2e/%2e%2e/etc/passwd", 404),
    ],
)
def test_wrong_method_or_path_is_an_openai_error(
    client: httpx.Client, method: str, path: str, status: int
) -> None:
    response = client.request(method, path, content=VALID)
    assert_openai_error(response, status)


def test_streamed_valid_request_after_abuse_completes(client: httpx.Client) -> None:
    body = VALID_UP[:-1] + b', "stream": true}'
    response = client.post(CHAT, content=body)
    assert response.status_code == 200
    assert response.text.rstrip().endswith("data: [DONE]")


# Other POST endpoints that read a JSON body, when this checkout serves them.
EXTRA_ENDPOINTS = ["/v1/feedback", "/v1/route/dry-run"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=hostile_requests)
def test_other_json_endpoints_never_answer_5xx(
    client: httpx.Client, request: HostileRequest
) -> None:
    for path in EXTRA_ENDPOINTS:
        response = client.post(path, content=request.body, headers=request.headers())
        if response.status_code == 404 and "Unknown path" in response.text:
            continue  # not in this checkout
        content_type = response.headers.get("content-type", "")
        problem = check_answer(response.status_code, content_type, response.content)
        assert problem is None, (path, request, problem)


# --- Forced variants, feedback, Responses and Messages, with keys (hostile_surfaces.py) ---


@pytest.fixture(scope="module")
def keyed() -> Iterator[httpx.Client]:
    """A gateway with keys (with and without may_force_variant) and the experiment `ab`;
    each key has made one request under the id feedback cases name."""
    with (
        raw.raw_upstream(raw.always_ok()) as upstream,
        running_gateway(keyed_yaml(upstream.url)) as gateway,
        httpx.Client(base_url=gateway.url, timeout=5) as c,
    ):
        for key in KEY_POLICIES:
            headers = {"authorization": f"Bearer {key}", "x-request-id": KNOWN_REQUEST_ID}
            assert c.post(CHAT, content=VALID, headers=headers).status_code == 200
        yield c


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=surface_requests())
def test_responses_messages_feedback_and_variants_never_get_a_5xx(
    keyed: httpx.Client, request: HostileRequest
) -> None:
    response = keyed.post(request.path, content=request.body, headers=request.headers())
    content_type = response.headers.get("content-type", "")
    problem = check_answer(response.status_code, content_type, response.content, request.endpoint)
    assert problem is None, (request, problem)


def _key(key_id: str) -> str:
    return next(key for key, (kid, _, _) in KEY_POLICIES.items() if kid == key_id)


# key id, x-gateway-variant, status: forcing needs may_force_variant, and the variant's
# target must be on the key's allowlist (premium -> up)
FORCED = [
    ("plain", "control", 403),
    ("plain", "premium", 403),
    ("forcer", "control", 200),
    ("forcer", "premium", 403),
    ("forcer", "nope", 400),
    ("forcer", "../premium", 400),
    ("wide", "premium", 200),
    ("wide", "CONTROL", 400),
]


@pytest.mark.parametrize(("key_id", "variant", "status"), FORCED)
def test_forced_variants_need_the_permission_and_the_target(
    keyed: httpx.Client, key_id: str, variant: str, status: int
) -> None:
    headers = {"authorization": f"Bearer {_key(key_id)}", "x-gateway-variant": variant}
    response = keyed.post(CHAT, content=VALID, headers=headers)
    if status == 200:
        assert response.status_code == 200, response.text
    else:
        assert_openai_error(response, status)


# scores no report may sum: not finite, past +-1e6, not numbers
BAD_SCORES = ["NaN", "Infinity", "1e400", "1e308", "-1000001", "true", '"5"']
BAD_FEEDBACK = [
    *(
        pytest.param(b'{"request_id": "fixed-id", "score": %s}' % s.encode(), 400, id=s)
        for s in BAD_SCORES
    ),
    pytest.param(b'{"request_id": "fixed-id", "outcome": "maybe"}', 400, id="outcome"),
    pytest.param(b'{"request_id": 5, "score": 1}', 400, id="id-type"),
    pytest.param(b'{"request_id": "fixed-id"}', 400, id="nothing-given"),
    pytest.param(b'["fixed-id"]', 400, id="array"),
    pytest.param(b'{"request_id": "unknown-id", "score": 1}', 404, id="unknown-id"),
    pytest.param(b'{"request_id": "fixed-id", "pad": "' + b"x" * 20000 + b'"}', 413, id="big"),
]


@pytest.mark.parametrize(("body", "status"), BAD_FEEDBACK)
def test_hostile_feedback_gets_a_clear_4xx_and_the_report_still_answers(
    keyed: httpx.Client, body: bytes, status: int
) -> None:
    headers = {"authorization": f"Bearer {_key('wide')}", "content-type": "application/json"}
    assert_openai_error(keyed.post("/v1/feedback", content=body, headers=headers), status)
    ok = keyed.post(
        "/v1/feedback", json={"request_id": KNOWN_REQUEST_ID, "score": -1e6}, headers=headers
    )
    assert ok.status_code == 200, ok.text
    report = keyed.get("/admin/experiments/ab", headers={"authorization": f"Bearer {ADMIN_KEY}"})
    assert report.status_code == 200, report.text


# endpoint, body, status: Responses errors are OpenAI's, Messages errors Anthropic's
BAD_FORMAT_BODIES = [
    ("responses", b'{"model": "mock-small"}', 400),
    ("responses", b'{"model": "mock-small", "input": "hi", "max_output_tokens": -1}', 400),
    ("responses", b'{"model": "mock-small", "input": "hi", "previous_response_id": "../x"}', 400),
    ("responses", b'{"model": "up", "input": "hi"}', 403),
    ("responses", b'{"model": "mock-small", "input": [{"type": "x"}]}', 400),
    # unhashable values where a name is looked up in a set (500 before)
    ("responses", b'{"model": "mock-small", "input": [{"role": {}, "content": "hi"}]}', 400),
    ("responses", b'{"model": "mock-small", "input": [{"role": [], "content": "hi"}]}', 400),
    (
        "responses",
        b'{"model": "mock-small", "input": [{"role": "user", "content": [{"type": {}}]}]}',
        400,
    ),
    ("messages", b'{"model": "mock-small", "messages": []}', 400),
    ("messages", b'{"model": "mock-small", "max_tokens": 1e400, "messages": []}', 400),
    (
        "messages",
        b'{"model": "up", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}',
        403,
    ),
    ("messages", b'{"model": "mock-small", "max_tokens": 5, "messages": [{"role": 5}]}', 400),
    ("count_tokens", b'{"model": "mock-small", "messages": "hi"}', 400),
]


@pytest.mark.parametrize(("endpoint", "body", "status"), BAD_FORMAT_BODIES)
def test_bad_responses_and_messages_bodies_get_the_formats_own_4xx(
    keyed: httpx.Client, endpoint: str, body: bytes, status: int
) -> None:
    request = HostileRequest(endpoint, "application/json", body, key=_key("plain"))
    response = keyed.post(request.path, content=body, headers=request.headers())
    assert response.status_code == status, response.text
    assert (
        check_answer(status, response.headers["content-type"], response.content, endpoint) is None
    )
