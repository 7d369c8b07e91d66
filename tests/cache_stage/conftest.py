from __future__ import annotations

import tempfile
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """A real PostgreSQL with pgvector (the `pgserver` package), in a temporary folder."""
    import pgserver

    with tempfile.TemporaryDirectory(prefix="gw-pg-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
            yield server.get_uri()
        finally:
            server.cleanup()
