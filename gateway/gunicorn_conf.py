"""gunicorn settings for the container: `gunicorn -c python:gateway.gunicorn_conf`.

Uvicorn workers, their number from WEB_CONCURRENCY, the port from PORT, the drain time
from GATEWAY_GRACE_SECONDS. The metrics directory is prepared here, in the master, before
it forks: workers inherit it and write their metrics there (see observability/multiprocess).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from uvicorn.workers import UvicornWorker

from gateway.connection_guard import ConnectionLimits, GuardedHTTP
from gateway.observability.multiprocess import prepare_multiprocess_dir, worker_exited

prepare_multiprocess_dir()

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gateway.gunicorn_conf.GatewayWorker"
graceful_timeout = int(float(os.environ.get("GATEWAY_GRACE_SECONDS", "30")))
timeout = 0  # streams may be silent for long; liveness is the probe's job, not the arbiter's
keepalive = 75  # replaced by server.keepalive_seconds in GatewayWorker
accesslog = None  # the gateway writes its own JSON access log
# uvicorn workers would otherwise rewrite the client address from X-Forwarded-For sent by
# 127.0.0.1; only the gateway's own trusted-proxy setting decides that.
forwarded_allow_ips = ""
wsgi_app = "gateway.serve:app_from_env()"


def child_exit(server: object, worker: object) -> None:
    worker_exited(worker.pid)  # type: ignore[attr-defined]


class GatewayWorker(UvicornWorker):
    """uvicorn's worker with the gateway's connection limits (gateway/connection_guard.py)
    and keep-alive time, read from the same config file as the app."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from gateway.serve import config_from_env

        _, config = config_from_env()
        # uvicorn types `http` as a protocol class; a factory with the same call is what it uses
        self.config.http = GuardedHTTP(ConnectionLimits.from_config(config.server))  # type: ignore[assignment]
        self.config.timeout_keep_alive = config.server.keepalive_seconds  # type: ignore[assignment]


def on_starting(server: object) -> None:
    """In the master, before it binds the port: refuse a config with problems (a missing
    extra included) with its problem lines, rather than workers failing one by one."""
    from gateway.config import ConfigError, load_config

    try:
        load_config(os.environ.get("GATEWAY_CONFIG"))
    except ConfigError as err:
        print(err, file=sys.stderr)
        raise SystemExit(1) from None
