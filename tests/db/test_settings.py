"""`state.database`: a postgresql:// URL, kept secret; empty means none."""

from __future__ import annotations

import pytest

from gateway.config import ConfigError, load_config_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", None),
        ("postgresql://u:pw-123@db:5432/gw", "postgresql://u:pw-123@db:5432/gw"),
        ("postgres://u@db/gw", "postgres://u@db/gw"),
    ],
)
def test_database_urls_accepted(value: str, expected: str | None) -> None:
    database = load_config_text(f'state: {{database: "{value}"}}').state.database
    assert (database.get_secret_value() if database else None) == expected
    assert "pw-123" not in repr(load_config_text(f'state: {{database: "{value}"}}'))


@pytest.mark.parametrize("value", ["mysql://u:hunter2@db/gw", "hunter2", "redis://:hunter2@r"])
def test_other_urls_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config_text(f'state: {{database: "{value}"}}')
    assert "state.database" in str(err.value) and "hunter2" not in str(err.value)
