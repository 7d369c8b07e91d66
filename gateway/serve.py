"""Run the app under uvicorn (one worker) or several uvicorn workers."""

from __future__ import annotations

import os
from typing import Any

import uvicorn

from gateway.app import create_app
from gateway.config.schema import GatewayConfig
from gateway.connection_guard import ConnectionLimits, GuardedHTTP
from gateway.heap import settle_heap
from gateway.observability.logging import configure_logging
from gateway.observability.multiprocess import prepare_multiprocess_dir
from gateway.observability.redaction import config_secrets


def serve(
    config: GatewayConfig,
    config_path: str | None,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
) -> int:
    configure_logging(config.logging.level, config_secrets(config))
    host = host or config.server.host
    port = config.server.port if port is None else port
    workers = workers or config.server.workers
    common = {"host": host, "port": port, **uvicorn_options(config)}
    if workers > 1:
        if config_path:
            os.environ["GATEWAY_CONFIG"] = config_path
        prepare_multiprocess_dir()  # before any worker imports prometheus_client
        uvicorn.run("gateway.serve:app_from_env", factory=True, workers=workers, **common)
    else:
        app = create_app(config, config_path=config_path)
        settle_heap()
        uvicorn.run(app, **common)
    return 0


def uvicorn_options(config: GatewayConfig) -> dict[str, Any]:
    """How `gateway serve` runs uvicorn, but for the host, port and workers."""
    return {
        "log_config": None,
        "access_log": False,
        "timeout_graceful_shutdown": config.server.shutdown_grace_seconds,
        "server_header": False,
        # Head size, header/body timeouts and the connection cap (connection_guard).
        "http": GuardedHTTP(ConnectionLimits.from_config(config.server)),
        "timeout_keep_alive": config.server.keepalive_seconds,
        # The client address is the socket's; X-Forwarded-For is honoured only from the
        # gateway's own configured trusted proxies (auth), never rewritten by uvicorn.
        "proxy_headers": False,
    }


def app_from_env():  # type: ignore[no-untyped-def]
    """Worker entry point: every worker loads the same config file."""
    path, config = config_from_env()
    configure_logging(config.logging.level, config_secrets(config))
    app = create_app(config, config_path=path)
    settle_heap()
    return app


def config_from_env() -> tuple[str | None, GatewayConfig]:
    from gateway.config import load_config

    path = os.environ.get("GATEWAY_CONFIG")
    return path, load_config(path)
