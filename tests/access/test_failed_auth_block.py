"""The per-IP failed-authentication block (issue 10, item 12), through the real server: it
stops failed attempts only (a valid key from a blocked IP still works), failures at
/v1/feedback and /admin count toward the same limit, and every kind of bad key gets one
identical answer."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.access.conftest import ADMIN, KEY_A, KEY_B, KEY_OLD, KEYS_YAML
from tests.servers import RunningServer

BODY = {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway(make_gateway: Callable[[str], RunningServer]) -> RunningServer:
    return make_gateway("auth:" + KEYS_YAML + "limits: {failed_auth_ip: ['3/minute']}\n")


def bearer(key: str | None) -> dict[str, str]:
    return {} if key is None else {"authorization": f"Bearer {key}"}


def attempt(gateway: RunningServer, where: str, key: str | None) -> httpx.Response:
    url = gateway.url
    if where == "chat":
        return httpx.post(f"{url}/v1/chat/completions", json=BODY, headers=bearer(key))
    if where == "feedback":
        body = {"request_id": "r-1", "outcome": "accepted"}
        return httpx.post(f"{url}/v1/feedback", json=body, headers=bearer(key))
    if where == "models":
        return httpx.get(f"{url}/v1/models", headers=bearer(key))
    return httpx.get(f"{url}/admin/keys", headers=bearer(key))


def test_a_valid_key_from_a_blocked_ip_still_works(gateway: RunningServer) -> None:
    bad = [attempt(gateway, "chat", f"sk-guess-{i}").status_code for i in range(4)]
    assert bad == [401, 401, 401, 429]
    assert attempt(gateway, "chat", "sk-guess-again").status_code == 429  # still blocked
    for where, key in [("chat", KEY_A), ("models", KEY_B), ("admin", ADMIN)]:
        assert attempt(gateway, where, key).status_code == 200, where
    assert attempt(gateway, "feedback", KEY_A).status_code == 404  # authenticated: no link


@pytest.mark.parametrize("last", ["chat", "feedback", "admin", "models"])
def test_feedback_and_admin_failures_count_toward_the_same_limit(
    gateway: RunningServer, last: str
) -> None:
    first = [attempt(gateway, w, "sk-wrong").status_code for w in ("feedback", "admin", "chat")]
    assert first == [401, 401, 401]
    blocked = attempt(gateway, last, "sk-wrong-again")
    assert blocked.status_code == 429
    assert blocked.json()["error"]["type"] == "rate_limit_error"
    assert int(blocked.headers["retry-after"]) >= 1


@pytest.mark.parametrize("where", ["chat", "feedback", "models", "admin"])
def test_unknown_expired_missing_and_other_keys_get_one_identical_answer(
    make_gateway: Callable[[str], RunningServer], where: str
) -> None:
    gateway = make_gateway("auth:" + KEYS_YAML + "limits: {failed_auth_ip: []}\n")
    bad_keys = [None, "sk-never-issued-0123456789", KEY_OLD]
    if where == "admin":
        bad_keys.append(KEY_A)  # a valid API key is just as wrong here
    answers = {(r.status_code, r.text) for r in (attempt(gateway, where, k) for k in bad_keys)}
    if where != "admin":  # the missing key is told how to send one; the rest are alike
        missing = attempt(gateway, where, None)
        answers.discard((missing.status_code, missing.text))
        assert missing.status_code == 401
    assert len(answers) == 1, answers
    status, text = answers.pop()
    assert status == 401
    for secret in (KEY_A, KEY_OLD, ADMIN, "sk-never-issued"):
        assert secret not in text
