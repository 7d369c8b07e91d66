"""Cost of the connection guard (gateway/connection_guard.py) against uvicorn's plain
httptools protocol, in the same run: the same app (mock provider, no access log) served
both ways, wrk against /health and a chat completion, the variants alternated.

    python benchmarks/bench_http_guard.py [--seconds 5] [--rounds 2] [--connections 32]

Prints requests/s per variant and the guarded/plain ratio; asserts nothing. `--micro`
instead feeds one request at a time to each protocol in-process (fake transport, a
two-byte app): the guard's own cost per request, without network or load noise.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    CPU_GATEWAY,
    PYTHON,
    Processes,
    format_table,
    free_port,
    run_wrk,
    wait_for_health,
    write_wrk_script,
)

CONFIG = """
logging: {level: warning, access_log: false}
providers:
  mock: {kind: mock}
models:
  mock-small: {deployments: [{provider: mock, model: mock-small}]}
"""
CHAT_BODY = {"model": "mock-small", "messages": [{"role": "user", "content": "Say hello"}]}


def serve(variant: str, config_path: str, port: int) -> None:
    """Child mode: the gateway app under uvicorn with `variant`'s HTTP protocol."""
    import uvicorn

    from gateway.app import create_app
    from gateway.config import load_config
    from gateway.connection_guard import ConnectionLimits, GuardedHTTP

    config = load_config(config_path)
    guarded = GuardedHTTP(ConnectionLimits.from_config(config.server))
    http = guarded if variant == "guarded" else "httptools"
    app = create_app(config)
    uvicorn.run(app, host="127.0.0.1", port=port, http=http, log_config=None, access_log=False)


REQUEST = b"GET /health HTTP/1.1\r\nhost: gateway\r\nuser-agent: wrk\r\naccept: */*\r\n\r\n"


async def _tiny_app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


class _Transport(asyncio.Transport):
    def write(self, data: Any) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 1), "peername": ("127.0.0.1", 2)}.get(name, default)

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def _us_per_request(factory: Any, requests: int) -> float:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    config = Config(app=_tiny_app, log_config=None)
    config.load()
    state = ServerState()
    loop = asyncio.get_running_loop()
    protocol = factory(config=config, server_state=state, app_state={}, _loop=loop)
    protocol.connection_made(_Transport())
    started = time.perf_counter()
    for _ in range(requests):
        protocol.data_received(REQUEST)
        while state.tasks:
            await asyncio.sleep(0)
    return (time.perf_counter() - started) / requests * 1e6


def micro(rounds: int) -> None:
    from uvicorn.protocols.http.h11_impl import H11Protocol
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from gateway.config.schema import ServerConfig
    from gateway.connection_guard import ConnectionLimits, GuardedHTTP

    guarded = GuardedHTTP(ConnectionLimits.from_config(ServerConfig()))
    variants = {"httptools": HttpToolsProtocol, "guarded httptools": guarded, "h11": H11Protocol}
    best = dict.fromkeys(variants, float("inf"))
    for _ in range(rounds):
        for name, factory in variants.items():
            best[name] = min(best[name], asyncio.run(_us_per_request(factory, 20_000)))
    figures = ", ".join(f"{name} {us:.1f}" for name, us in best.items())
    print(f"us per request, best of {rounds}: {figures}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--micro", action="store_true", help="in-process cost per request")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.config, args.port)
        return
    if args.micro:
        micro(max(args.rounds, 5))
        return
    results: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp, Processes(Path(tmp)) as procs:
        config = Path(tmp) / "gateway.yaml"
        config.write_text(CONFIG)
        scripts = {
            "/health": Path(tmp) / "get.lua",
            "/v1/chat/completions": write_wrk_script(Path(tmp) / "chat.lua", CHAT_BODY),
        }
        scripts["/health"].write_text('wrk.method = "GET"\n')
        for _ in range(args.rounds):
            for variant in ("plain", "guarded"):
                port = free_port()
                argv = [PYTHON, __file__, "--serve", variant, "--config", str(config)]
                svc = procs.start(variant, [*argv, "--port", str(port)], port, CPU_GATEWAY)
                wait_for_health(svc)
                for path, script in scripts.items():
                    url = f"http://127.0.0.1:{port}{path}"
                    run_wrk(url, args.connections, 1, script)  # warm-up
                    result = run_wrk(url, args.connections, args.seconds, script)
                    results.setdefault((variant, path), []).append(result.rps)
                procs.stop_all()
    rows = []
    for path in scripts:
        plain = statistics.median(results[("plain", path)])
        guarded = statistics.median(results[("guarded", path)])
        rows.append([path, f"{plain:.0f}", f"{guarded:.0f}", f"{guarded / plain:.3f}"])
    print(format_table(["path", "plain req/s", "guarded req/s", "ratio"], rows))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
