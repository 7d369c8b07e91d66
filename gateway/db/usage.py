"""Usage from the ledger: totals per key, team, model or day over a time range.

Read by `GET /admin/usage` and `gateway usage report`. The grouping column comes from a
fixed table (never from the caller's text), and the range is bounded, so one report costs
one indexed aggregate.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncpg

GROUPS = {
    "key": "key_id",
    "team": "coalesce(team, '')",
    "model": "target_alias",
    "day": "to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
}
MAX_RANGE = timedelta(days=366)
DEFAULT_RANGE = timedelta(days=30)
FIELDS = ("requests", "errors", "prompt_tokens", "completion_tokens", "cached_tokens", "cost_usd")
QUERY = """
SELECT {group} AS name,
       count(*) AS requests,
       count(*) FILTER (WHERE status >= 400) AS errors,
       coalesce(sum(prompt_tokens), 0) AS prompt_tokens,
       coalesce(sum(completion_tokens), 0) AS completion_tokens,
       coalesce(sum(cached_tokens), 0) AS cached_tokens,
       coalesce(sum(cost_usd), 0) AS cost_usd
FROM usage_ledger
WHERE at >= $1 AND at < $2
GROUP BY 1
ORDER BY cost_usd DESC, name
LIMIT 10000
"""


class BadUsageQuery(ValueError):
    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True)
class UsageQuery:
    start: datetime
    end: datetime
    group_by: str

    @classmethod
    def parse(cls, start: str | None, end: str | None, group_by: str | None) -> UsageQuery:
        """From the caller's text; BadUsageQuery names the offending parameter."""
        group = group_by or "key"
        if group not in GROUPS:
            raise BadUsageQuery("'group_by' must be one of key, team, model, day.", "group_by")
        until = _moment(end, "to") if end else datetime.now(UTC)
        since = _moment(start, "from") if start else until - DEFAULT_RANGE
        if since >= until:
            raise BadUsageQuery("'from' must be before 'to'.", "from")
        if until - since > MAX_RANGE:
            raise BadUsageQuery("The range may span at most 366 days.", "from")
        return cls(since, until, group)


async def usage_report(
    pool: asyncpg.Pool | asyncpg.Connection, query: UsageQuery
) -> list[dict[str, Any]]:
    sql = QUERY.format(group=GROUPS[query.group_by])
    rows = await pool.fetch(sql, query.start, query.end)
    return [{query.group_by: r["name"], **{f: _number(r[f]) for f in FIELDS}} for r in rows]


def _moment(text: str, param: str) -> datetime:
    """An ISO 8601 date or time; a naive one is UTC, a date is its midnight."""
    if len(text) > 40:
        raise BadUsageQuery(f"'{param}' is not an ISO 8601 date or time.", param)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadUsageQuery(f"'{param}' is not an ISO 8601 date or time.", param) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _number(value: Any) -> int | float:
    return value if isinstance(value, int) else round(float(value), 10)
