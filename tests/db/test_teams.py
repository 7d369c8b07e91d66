"""Teams in the database: the admin API writes them, every instance's budgets follow them
within `auth.team_cache_seconds`, and YAML teams stay read-only beside them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.accounting.teams import TeamPolicies
from gateway.cli import main
from gateway.config.access import BudgetConfig, TeamConfig
from gateway.db.teams import TeamCache
from gateway.errors import DatabaseUnavailable
from tests.conftest import upstream_config
from tests.db.conftest import (
    database_cut_off,
    fetch,
    fetchval,
    fresh_database,
    run,
    wait_until,
)
from tests.db.gateways import (
    ADMIN,
    COST_PER_REQUEST,
    admin,
    chat,
    db_config,
    redis_state,
    running_gateway,
)
from tests.gateway_process import gateway_process
from tests.redis_keys import drop_prefix, unique_prefix
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

Upstream = tuple[FakeUpstream, RunningServer]
YAML_TEAMS = "{red: {budget: {usd_per_day: 1000}}}"
# Budgets reserve each request's maximum cost (prompt estimate + max_tokens <= 20 here):
# room for two real requests, then for one more reservation, not two.
TWO_AND_A_BIT = 2 * COST_PER_REQUEST + 20


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    redis.Redis.from_url(redis_url).ping()  # fails (not skips) without Redis
    prefix = unique_prefix()
    yield prefix
    drop_prefix(redis_url, prefix)


@pytest.fixture
def config(database_url: str, redis_url: str, prefix: str, upstream_server: Upstream) -> str:
    state = redis_state(redis_url, prefix)
    return db_config(upstream_server[1].url, database_url, state, teams=YAML_TEAMS)


@pytest.fixture
def gw(config: str, upstream: FakeUpstream) -> Iterator[RunningServer]:
    with running_gateway(config) as server:
        yield server


def team_key(gw: RunningServer, key_id: str, team: str) -> str:
    created = admin(gw, "POST", "/admin/keys", json={"id": key_id, "team": team})
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def test_a_database_team_budget_holds_across_two_processes_and_its_changes_reach_both(
    config: str, upstream: FakeUpstream, tmp_path: Path
) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config)
    with gateway_process(path) as one, gateway_process(path) as two:
        budget = {"usd_per_day": TWO_AND_A_BIT}
        made = admin(one, "POST", "/admin/teams", json={"name": "green", "budget": budget})
        assert made.status_code == 201, made.text
        key = team_key(one, "green-key", "green")
        # The second process learns of the team within team_cache_seconds (0.2 s here).
        assert wait_until(lambda: admin(two, "GET", "/admin/teams/green").status_code == 200)
        assert [chat(gw, key, max_tokens=4).status_code for gw in (one, two, one)] == [200] * 3
        for gw in (two, one):
            refused = chat(gw, key, max_tokens=4)
            assert refused.status_code == 429, "the database team's budget was not applied"
            assert refused.json()["error"]["type"] == "insufficient_quota"
            assert refused.json()["error"]["param"] == "team"
        usage = admin(two, "GET", "/admin/teams/green").json()["usage"]["day"]
        assert usage["usd"] == pytest.approx(3 * COST_PER_REQUEST)

        raised = {"name": "green", "budget": {"usd_per_day": 1000}}
        assert admin(two, "POST", "/admin/teams", json=raised).status_code == 200  # replaced
        assert wait_until(lambda: chat(one, key, max_tokens=4).status_code == 200)
        admin(two, "POST", "/admin/teams", json={"name": "green", "budget": budget})
        assert wait_until(lambda: chat(one, key, max_tokens=4).status_code == 429)

        assert admin(one, "DELETE", "/admin/teams/green").json() == {
            "name": "green",
            "deleted": True,
        }
        assert wait_until(lambda: chat(two, key, max_tokens=4).status_code == 200)  # no budget
        assert admin(two, "GET", "/admin/teams/green").status_code == 404
        assert admin(two, "DELETE", "/admin/teams/green").json()["error"]["code"] == (
            "team_not_found"
        )


def test_teams_are_listed_from_both_sources_and_stored_as_the_yaml_writes_them(
    gw: RunningServer, database_url: str
) -> None:
    body = {"name": "ops", "budget": {"tokens_per_month": 5000}}
    assert admin(gw, "POST", "/admin/teams", json=body).status_code == 201
    listed = admin(gw, "GET", "/admin/teams").json()["data"]
    by_name = {t["name"]: t for t in listed}
    assert by_name["red"] == {"name": "red", "source": "config", "budget": {"usd_per_day": 1000}}
    assert by_name["ops"] == {
        "name": "ops",
        "source": "database",
        "budget": {"tokens_per_month": 5000},
    }
    stored = fetchval(database_url, "SELECT policy::text FROM teams WHERE name = 'ops'")
    assert TeamConfig.model_validate_json(stored).budget.tokens_per_month == 5000
    assert admin(gw, "GET", "/admin/teams/red").json()["source"] == "config"
    assert admin(gw, "DELETE", "/admin/teams/ops").status_code == 200
    empty = admin(gw, "POST", "/admin/teams", json={"name": "labels-only"})  # no budget: fine
    assert empty.status_code == 201 and empty.json()["budget"] == {}
    assert admin(gw, "DELETE", "/admin/teams/labels-only").status_code == 200


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_a_yaml_team_is_read_only_409(gw: RunningServer, method: str) -> None:
    if method == "POST":
        answer = admin(gw, "POST", "/admin/teams", json={"name": "red", "budget": {}})
    else:
        answer = admin(gw, "DELETE", "/admin/teams/red")
    assert answer.status_code == 409
    assert answer.json()["error"]["code"] == "team_in_config"
    assert admin(gw, "GET", "/admin/teams/red").json()["budget"] == {"usd_per_day": 1000}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"budget": {}}', "name"),
        (b'{"name": "", "budget": {}}', "name"),
        (b'{"name": "a b", "budget": {}}', "name"),
        (b'{"name": "..", "budget": {}}', "name"),
        (b'{"name": "x" , "budget": {}, "name": 5}', "name"),
        (b'{"name": "t", "budgets": {}}', "budgets"),
        (b'{"name": "t", "budget": {"usd_per_day": -1}}', "budget.usd_per_day"),
        (b'{"name": "t", "budget": {"usd_per_day": "lots"}}', "budget.usd_per_day"),
        (b'{"name": "t", "budget": {"tokens_per_week": 5}}', "budget.tokens_per_week"),
        (b'{"name": "t", "budget": []}', "budget"),
        (b'{"name": "t", "budget": {"usd_per_day": 1e400}}', None),  # not finite: not JSON
    ],
)
def test_bad_team_bodies_get_400_naming_the_field(
    gw: RunningServer, body: bytes, param: str | None
) -> None:
    answer = admin(gw, "POST", "/admin/teams", content=body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["param"] == param


def test_a_large_body_gets_413_and_a_path_name_no_team_can_have_404(gw: RunningServer) -> None:
    big = b'{"name": "t", "pad": "' + b"x" * 20_000 + b'"}'
    assert admin(gw, "POST", "/admin/teams", content=big).status_code == 413
    odd = admin(gw, "GET", "/admin/teams/%3Cscript%3E")
    assert odd.status_code == 404 and "script" not in odd.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/admin/teams"),
        ("GET", "/admin/teams"),
        ("GET", "/admin/teams/red"),
        ("DELETE", "/admin/teams/red"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-admin-key", f"Bearer {ADMIN}x"])
def test_team_routes_need_the_admin_key(
    gw: RunningServer, method: str, path: str, authorization: str | None
) -> None:
    headers = {"authorization": authorization} if authorization else {}
    body = {"name": "sneaky", "budget": {}}
    answer = httpx.request(method, f"{gw.url}{path}", headers=headers, json=body, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "invalid_admin_key"


def test_team_changes_while_the_database_is_down_get_503_and_budgets_keep_their_copy(
    gw: RunningServer, database_url: str
) -> None:
    budget = {"usd_per_day": 2 * COST_PER_REQUEST + 20}
    assert admin(gw, "POST", "/admin/teams", json={"name": "blue", "budget": budget}).is_success
    key = team_key(gw, "blue-key", "blue")
    assert chat(gw, key, max_tokens=4).status_code == 200
    with database_cut_off(database_url):
        new = admin(gw, "POST", "/admin/teams", json={"name": "gone", "budget": {}})
        assert new.status_code == 503
        assert admin(gw, "GET", "/admin/teams").status_code == 503
        assert admin(gw, "DELETE", "/admin/teams/blue").status_code == 503
        # The instance's copy of the teams still decides: two more fit, then 429.
        codes = [chat(gw, key, max_tokens=4).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
    assert fetchval(database_url, "SELECT count(*) FROM teams WHERE name = 'gone'") == 0
    assert admin(gw, "DELETE", "/admin/teams/blue").status_code == 200


def test_without_a_database_team_writes_get_404_and_yaml_teams_are_listed(
    upstream_server: Upstream, upstream: FakeUpstream
) -> None:
    config = upstream_config(
        upstream_server[1].url,
        f"auth: {{admin_key: '${{TEST_LEDGER_ADMIN_KEY}}', teams: {YAML_TEAMS}}}",
    )
    with running_gateway(config) as gw:
        for method, path in [("POST", "/admin/teams"), ("DELETE", "/admin/teams/new")]:
            answer = admin(gw, method, path, json={"name": "new", "budget": {}})
            assert answer.status_code == 404
            assert answer.json()["error"]["code"] == "teams_need_database"
        assert [t["name"] for t in admin(gw, "GET", "/admin/teams").json()["data"]] == ["red"]


class StoredTeams:
    """A TeamSource holding what the database would."""

    def __init__(self, teams: dict[str, TeamConfig]) -> None:
        self.teams = teams

    def get(self, name: str) -> TeamConfig | None:
        return self.teams.get(name)

    async def refresh(self, max_age: float) -> None:
        return None


@pytest.mark.parametrize(
    ("name", "usd_per_day"),
    [("red", 1000.0), ("stored", 5.0), ("neither", None), (None, None), ("", None)],
)
def test_a_yaml_team_wins_over_a_database_row_of_its_name(
    name: str | None, usd_per_day: float | None
) -> None:
    stored = StoredTeams(
        {
            "red": TeamConfig(budget=BudgetConfig(usd_per_day=1)),  # written behind the API
            "stored": TeamConfig(budget=BudgetConfig(usd_per_day=5)),
        }
    )
    configured = {"red": TeamConfig(budget=BudgetConfig(usd_per_day=1000))}
    budget = TeamPolicies(configured, stored).budget(name)
    assert (budget.usd_per_day if budget else None) == usd_per_day


def test_teams_move_between_databases_and_a_bad_file_imports_nothing(
    gw: RunningServer, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = {"name": "moving", "budget": {"usd_per_month": 250}}
    assert admin(gw, "POST", "/admin/teams", json=body).status_code == 201
    assert main(["teams", "export", "--database", database_url]) == 0
    exported = capsys.readouterr().out
    assert orjson.loads(exported.splitlines()[0]) == body
    source = tmp_path / "teams.jsonl"
    source.write_text(exported)
    with fresh_database() as target:
        assert main(["teams", "import", "--database", target, str(source)]) == 0
        assert "imported 1 team(s), 0 already present" in capsys.readouterr().out
        assert main(["teams", "import", "--database", target, str(source)]) == 0
        assert "imported 0 team(s), 1 already present" in capsys.readouterr().out
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"name": "fine"}\n{"name": "t", "budget": {"usd_per_day": -1}}\n')
        assert main(["teams", "import", "--database", target, str(bad)]) == 1
        assert "line 2: budget.usd_per_day" in capsys.readouterr().err
        assert fetchval(target, "SELECT count(*) FROM teams WHERE name = 'fine'") == 0
    assert admin(gw, "DELETE", "/admin/teams/moving").status_code == 200


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=80),
)
HOSTILE_TEAMS = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.text(max_size=80), JSON_LEAVES),
        "budget": st.one_of(
            st.dictionaries(
                st.sampled_from(["usd_per_day", "tokens_per_month", "nope", ""]), JSON_LEAVES
            ),
            JSON_LEAVES,
        ),
        "extra": JSON_LEAVES,
    },
)


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=HOSTILE_TEAMS)
def test_hostile_team_bodies_get_a_4xx_or_are_stored_never_a_5xx(
    gw: RunningServer, body: dict[str, object]
) -> None:
    answer = admin(gw, "POST", "/admin/teams", content=orjson.dumps(body))
    assert answer.status_code in (200, 201, 400, 409), answer.text
    assert answer.json()["error" if answer.status_code >= 400 else "name"]
    if answer.status_code < 400:
        assert admin(gw, "DELETE", f"/admin/teams/{body['name']}").status_code == 200


class CountingArchive:
    """TeamArchive's `all`, answering from a dict (or failing), counting its calls."""

    def __init__(self) -> None:
        self.teams: dict[str, TeamConfig] = {}
        self.calls = 0
        self.down = False

    async def all(self) -> dict[str, TeamConfig]:
        self.calls += 1
        if self.down:
            raise DatabaseUnavailable("down")
        return dict(self.teams)


def test_the_team_cache_reads_the_database_once_per_interval_and_after_a_local_change() -> None:
    async def scenario() -> None:
        archive = CountingArchive()
        archive.teams["a"] = TeamConfig(budget=BudgetConfig(usd_per_day=1))
        cache = TeamCache(archive)  # type: ignore[arg-type]
        await cache.refresh(60)  # never loaded: this request waits for the first copy
        assert (archive.calls, cache.get("a")) == (1, archive.teams["a"])
        for _ in range(100):
            await cache.refresh(60)  # fresh: no database read on the request path
        assert archive.calls == 1
        archive.teams["b"] = TeamConfig()
        cache.invalidate()  # this instance wrote a team: its next request sees it
        await cache.refresh(60)
        assert (archive.calls, cache.get("b")) == (2, TeamConfig())
        await cache.aclose()

    run(scenario())


def test_an_unreachable_database_keeps_the_copy_and_is_retried_once_per_interval() -> None:
    async def scenario() -> None:
        archive = CountingArchive()
        archive.teams["a"] = TeamConfig()
        cache = TeamCache(archive)  # type: ignore[arg-type]
        await cache.refresh(60)
        archive.down = True
        cache.invalidate()
        for _ in range(50):
            await cache.refresh(60)  # one failed read, then no request waits or reads
        assert (archive.calls, cache.get("a")) == (2, TeamConfig())
        fresh = TeamCache(archive)  # type: ignore[arg-type]
        for _ in range(50):
            await fresh.refresh(60)  # never loaded and down: YAML teams only, one read
        assert archive.calls == 3 and fresh.get("a") is None
        await cache.aclose()

    run(scenario())


def test_a_row_edited_into_nonsense_is_skipped_and_the_other_teams_stay(
    gw: RunningServer, database_url: str
) -> None:
    assert admin(gw, "POST", "/admin/teams", json={"name": "sound"}).status_code == 201
    fetch(database_url, """INSERT INTO teams (name, policy) VALUES ('broken', '{"budget": 7}')""")
    names = [t["name"] for t in admin(gw, "GET", "/admin/teams").json()["data"]]
    assert "sound" in names and "broken" not in names
    assert admin(gw, "GET", "/admin/teams/broken").status_code == 404
    assert admin(gw, "DELETE", "/admin/teams/broken").status_code == 200  # still removable
    assert admin(gw, "DELETE", "/admin/teams/sound").status_code == 200
