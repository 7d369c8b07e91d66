"""The usage ledger: exactly one row per finished request, through outages and with
several instances writing at once."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.db.conftest import clear_ledger, database_cut_off, fetch, fetchval, wait_until
from tests.db.gateways import COST_PER_REQUEST, KEY_A, KEY_B, chat, db_config, running_gateway
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

Upstream = tuple[FakeUpstream, RunningServer]


@pytest.fixture(autouse=True)
def empty_ledger(database_url: str) -> None:
    clear_ledger(database_url)


def ledger_count(url: str) -> int:
    return int(fetchval(url, "SELECT count(*) FROM usage_ledger"))


def test_every_finished_request_leaves_one_row_with_its_fields(
    database_url: str, upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = db_config(upstream_server[1].url, database_url)
    with running_gateway(config) as gw:
        assert chat(gw, KEY_A, user="bob").status_code == 200
        assert chat(gw, KEY_B, stream=True).status_code == 200
        assert chat(gw, KEY_A, model="no-such-model").status_code == 404
        assert chat(gw, "sk-wrong-key").status_code == 401
        answered = httpx.post(
            f"{gw.url}/v1/chat/completions",
            headers={"authorization": f"Bearer {KEY_A}", "x-request-id": "same-id"},
            json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
        )
        assert answered.status_code == 200
        assert chat(gw, KEY_B, temperature=0.5).status_code == 200
    rows = fetch(database_url, "SELECT * FROM usage_ledger ORDER BY at")
    assert len(rows) == 5  # flushed when it stopped; the 401 (no key, no tokens) is not a row
    first = rows[0]
    assert (first["key_id"], first["team"], first["user_name"]) == ("key-a", "red", "alice")
    assert (first["requested_alias"], first["target_alias"]) == ("gpt-test", "gpt-test")
    assert first["deployment"] == "up/upstream-model"
    assert (first["status"], first["prompt_tokens"], first["completion_tokens"]) == (200, 7, 4)
    assert first["cost_usd"] == pytest.approx(COST_PER_REQUEST)
    assert first["endpoint"] == "chat" and first["stream"] is False
    assert rows[1]["stream"] is True and rows[1]["team"] == "blue"
    assert rows[2]["status"] == 404 and rows[2]["key_id"] == "key-a"
    assert rows[2]["cost_usd"] == 0.0


def test_a_client_chosen_request_id_never_suppresses_another_row(
    database_url: str, upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = db_config(upstream_server[1].url, database_url)
    with running_gateway(config) as gw:
        for key in (KEY_A, KEY_B):
            reply = httpx.post(
                f"{gw.url}/v1/chat/completions",
                headers={"authorization": f"Bearer {key}", "x-request-id": "reused-id"},
                json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
            )
            assert reply.status_code == 200
    rows = fetch(database_url, "SELECT key_id FROM usage_ledger WHERE request_id = 'reused-id'")
    assert sorted(r["key_id"] for r in rows) == ["key-a", "key-b"]


# How long PostgreSQL stays cut off under load (the scenario is 30 s: set
# GATEWAY_LEDGER_OUTAGE_SECONDS=30; the default keeps the suite short).
OUTAGE_SECONDS = float(os.environ.get("GATEWAY_LEDGER_OUTAGE_SECONDS", "2"))


class Load:
    """Clients sending requests in threads until stopped; every answer is counted."""

    def __init__(self, gw: RunningServer, clients: int = 4) -> None:
        self.gw = gw
        self.statuses: list[int] = []
        self.stopped = threading.Event()
        self.threads = [threading.Thread(target=self.client, args=(i,)) for i in range(clients)]

    def client(self, i: int) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopped.is_set():
                answer = client.post(
                    f"{self.gw.url}/v1/chat/completions",
                    headers={"authorization": f"Bearer {KEY_A if i % 2 else KEY_B}"},
                    json={"model": "gpt-test", "messages": [{"role": "user", "content": "x"}]},
                )
                self.statuses.append(answer.status_code)

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        for thread in self.threads:
            thread.join(15)


def test_requests_succeed_while_the_database_is_down_and_every_row_lands_after(
    database_url: str, upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = db_config(upstream_server[1].url, database_url)
    with running_gateway(config) as gw:
        metrics = f"{gw.url}/metrics"
        with Load(gw) as load:
            assert wait_until(lambda: ledger_count(database_url) > 0)
            with database_cut_off(database_url):
                during = len(load.statuses)
                assert wait_until(lambda: queue_depth(httpx.get(metrics).text) > 20)
                time.sleep(OUTAGE_SECONDS)  # the outage, under load
                assert len(load.statuses) > during  # requests kept being answered
                assert "gateway_ledger_write_errors_total" in httpx.get(metrics).text
        assert set(load.statuses) == {200}
        assert wait_until(lambda: ledger_count(database_url) == len(load.statuses))
        assert wait_until(lambda: queue_depth(httpx.get(metrics).text) == 0)
    assert ledger_count(database_url) == len(load.statuses)


def test_rows_queued_while_the_database_is_down_are_flushed_at_shutdown(
    database_url: str, upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = db_config(upstream_server[1].url, database_url)
    cut = database_cut_off(database_url)
    with running_gateway(config) as gw:
        cut.__enter__()
        try:
            for _ in range(10):
                assert chat(gw, KEY_A).status_code == 200
        finally:
            # Back before the gateway stops: its shutdown flush must write the queue.
            threading.Timer(0.5, cut.__exit__, args=(None, None, None)).start()
    assert ledger_count(database_url) == 10


def test_two_instances_writing_at_once_lose_and_duplicate_nothing(
    database_url: str, upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = db_config(upstream_server[1].url, database_url)
    per_instance = 60
    with running_gateway(config) as one, running_gateway(config) as two:

        def send(i: int) -> int:
            return chat(one if i % 2 else two, KEY_A if i % 3 else KEY_B).status_code

        with ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(send, range(2 * per_instance)))
    assert statuses == [200] * (2 * per_instance)
    rows = fetch(database_url, "SELECT request_id FROM usage_ledger")
    assert len(rows) == 2 * per_instance
    assert len({r["request_id"] for r in rows}) == 2 * per_instance


def queue_depth(exposition: str) -> float:
    for line in exposition.splitlines():
        if line.startswith("gateway_ledger_queue_rows "):
            return float(line.split()[1])
    raise AssertionError("no gateway_ledger_queue_rows in /metrics")


def test_hostile_names_are_recorded_cut_and_never_poison_a_batch(
    database_url: str, upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = db_config(upstream_server[1].url, database_url)
    with running_gateway(config) as gw:
        assert chat(gw, KEY_A, model="evil\x00" + "m" * 5000).status_code == 404
        assert chat(gw, KEY_A).status_code == 200
    rows = fetch(database_url, "SELECT requested_alias, status FROM usage_ledger ORDER BY at")
    assert [r["status"] for r in rows] == [404, 200]
    assert rows[0]["requested_alias"] == ("evil\x00" + "m" * 5000)[:256].replace("\x00", "")
