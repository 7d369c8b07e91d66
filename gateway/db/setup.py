"""The runtime's two hooks into the system of record; asyncpg is imported only when a
`state.database` is configured (it is an optional dependency: the `database` extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.config.schema import GatewayConfig
from gateway.observability.metrics import Metrics
from gateway.state import StateBackend

MISSING_DRIVER = "state.database needs asyncpg: pip install 'gateway[database]'"

if TYPE_CHECKING:
    from gateway.db.records import Records
    from gateway.services import Services


def system_of_record(
    config: GatewayConfig, metrics: Metrics, previous: Services | None
) -> Records | None:
    """The previous Records while the URL is unchanged, a new one (started) otherwise."""
    database = config.state.database
    if database is None:
        return None
    try:
        from gateway.db.records import build_records
    except ModuleNotFoundError as exc:
        raise RuntimeError(MISSING_DRIVER) from exc

    earlier = previous.records if previous else None
    return build_records(database.get_secret_value(), metrics, earlier)


def with_records(state: StateBackend, records: Records | None) -> StateBackend:
    """The state backend the pipeline uses: admin-created keys backed by the database."""
    return state if records is None else records.key_state(state)
