"""Config hot reload: on SIGHUP, on a change of the config file, or on POST /admin/reload.

The new file is loaded and validated first; an invalid one leaves the running config in
place (logged and counted). A valid one is swapped in by Runtime.reload: requests already
running finish on the old pipeline, unchanged providers keep their connection pools.
Server settings (host, port, workers, reload) take effect only at restart.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.config import ConfigError, load_config
from gateway.config.schema import GatewayConfig
from gateway.http.admin_auth import Handler, admin_only
from gateway.observability.logging import update_log_settings
from gateway.runtime import Runtime

log = logging.getLogger("gateway.reload")


@dataclass(frozen=True)
class ReloadResult:
    ok: bool
    problems: list[str] = field(default_factory=list)


class Reloader:
    def __init__(self, runtime: Runtime, path: str | None) -> None:
        self.runtime = runtime
        self.path = path
        self.lock = asyncio.Lock()
        self.watcher: asyncio.Task[None] | None = None
        self.sighup = False

    async def reload(self, trigger: str) -> ReloadResult:
        async with self.lock:  # one reload at a time; a second waits and reloads again
            return await self._reload(trigger)

    async def _reload(self, trigger: str) -> ReloadResult:
        counter = self.runtime.metrics.config_reloads
        running = self.runtime.config
        try:
            config = await asyncio.to_thread(load_config, self.path)
        except ConfigError as err:
            counter.labels(trigger, "invalid").inc()
            log.error(
                "config reload rejected; keeping the running config",
                extra={"trigger": trigger, "problems": err.problems},
            )
            return ReloadResult(False, err.problems)
        try:
            await self.runtime.reload(config)
        except Exception as exc:
            counter.labels(trigger, "failed").inc()
            log.exception("config reload failed; keeping the running config")
            return ReloadResult(False, [f"{type(exc).__name__}: {exc}"])
        counter.labels(trigger, "success").inc()
        self.runtime.metrics.config_loaded_at.set(time.time())
        update_log_settings(config)
        warn_restart_only(running, config)
        log.info("config reloaded", extra={"trigger": trigger, "models": sorted(config.models)})
        return ReloadResult(True)

    def start(self) -> None:
        """Listen for SIGHUP and watch the file, as the running config says."""
        settings = self.runtime.config.server.reload
        self.runtime.metrics.config_loaded_at.set(time.time())
        if settings.on_sighup:
            self.sighup = _add_signal_handler(
                signal.SIGHUP, lambda: asyncio.ensure_future(self.reload("sighup"))
            )
        if settings.watch_file and self.path:
            self.watcher = asyncio.create_task(self.watch(Path(self.path), settings.poll_seconds))

    async def stop(self) -> None:
        if self.sighup:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self.watcher is not None:
            self.watcher.cancel()

    async def watch(self, path: Path, every: float) -> None:
        """Poll the file's content (a Kubernetes ConfigMap swaps a symlink, so mtimes lie)."""
        seen = _digest(path)
        while True:
            await asyncio.sleep(every)
            now = _digest(path)
            if now is not None and now != seen:
                seen = now
                await self.reload("file")


def reload_endpoint(reloader: Reloader) -> Handler:
    """POST /admin/reload, behind the admin-key check (auth.admin_key)."""

    async def reload(request: Request) -> Response:
        result = await reloader.reload("admin")
        body = {"reloaded": result.ok, "problems": result.problems}
        return JSONResponse(body, status_code=200 if result.ok else 422)

    return admin_only(reloader.runtime, reload)


def warn_restart_only(old: GatewayConfig, new: GatewayConfig) -> None:
    if old.server != new.server:
        log.warning("server settings changed; they take effect at the next restart")


def _digest(path: Path) -> bytes | None:
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError:
        return None


def _add_signal_handler(sig: signal.Signals, callback) -> bool:  # type: ignore[no-untyped-def]
    """Signals only reach the main thread's loop (tests run servers in other threads)."""
    try:
        asyncio.get_running_loop().add_signal_handler(sig, callback)
    except (ValueError, RuntimeError, NotImplementedError):
        return False
    return True
