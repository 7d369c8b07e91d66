"""Experiment data kept for good: the variant of each request is in its ledger row, and
feedback on it in `experiment_feedback` (a second verdict replaces the first)."""

from __future__ import annotations

import httpx
import pytest

from tests.db.conftest import fetch, wait_until
from tests.db.gateways import running_gateway
from tests.experiments.test_feedback import AUTH, CLIENT_KEY, CONFIG, chat, feedback


def test_variants_and_feedback_are_stored(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADMIN_KEY", "admin-secret-123")
    monkeypatch.setenv("CLIENT_KEY", CLIENT_KEY)
    monkeypatch.setenv("OTHER_KEY", "other-key-987654")
    with running_gateway(CONFIG + f'state: {{database: "{database_url}"}}\n') as gw:
        for variant in ("control", "brief"):
            assert chat(gw, variant, f"exp-{variant}").status_code == 200
        body = {"request_id": "exp-brief", "outcome": "rejected"}
        assert feedback(gw, body).status_code == 200
        body = {"request_id": "exp-brief", "outcome": "accepted", "score": 0.5}
        assert feedback(gw, body).status_code == 200
        assert feedback(gw, {"request_id": "exp-control", "score": 1}).status_code == 200
        other = {"authorization": "Bearer other-key-987654"}
        answer = feedback(gw, {"request_id": "exp-brief", "outcome": "rejected"}, other)
        assert answer.status_code == 404  # another key's request: nothing stored
        assert httpx.get(f"{gw.url}/health", headers=AUTH).status_code == 200
    rows = fetch(
        database_url,
        "SELECT request_id, experiment, variant FROM usage_ledger "
        "WHERE request_id LIKE 'exp-%' ORDER BY request_id",
    )
    assert [tuple(r) for r in rows] == [
        ("exp-brief", "tone", "brief"),
        ("exp-control", "tone", "control"),
    ]
    assert wait_until(lambda: len(fetch(database_url, "SELECT 1 FROM experiment_feedback")) == 2)
    kept = fetch(
        database_url,
        "SELECT request_id, variant, key_id, outcome, score FROM experiment_feedback "
        "ORDER BY request_id",
    )
    assert [tuple(r) for r in kept] == [
        ("exp-brief", "brief", "tester", "accepted", 0.5),
        ("exp-control", "control", "tester", None, 1.0),
    ]
