"""Cold start of an install: seconds from `gateway serve` to `/ready` 200, and to the first
answered chat request, for a given interpreter (a venv) and config. The figures in README
"Install sets" come from here.

    python scripts/cold_start.py --python /tmp/core/bin/python --config gateway/quickstart.yaml
    python scripts/cold_start.py --python .venv/bin/python --config every-feature.yaml \
        --model mock-small --runs 3
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, started: float, deadline: float = 120) -> float:
    while time.perf_counter() - started < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return time.perf_counter() - started
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.01)
    raise SystemExit(f"{url} never answered 200")


def first_chat(base: str, model: str, started: float) -> float:
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": "hello"}}]}}'
    request = urllib.request.Request(
        f"{base}/v1/chat/completions",
        data=body.encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as reply:
        reply.read()
    return time.perf_counter() - started


def one_run(python: str, config: str, model: str | None) -> tuple[float, float | None]:
    port = free_port()
    command = [python, "-m", "gateway", "serve", "--config", config, "--port", str(port)]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the install's own code
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    try:
        base = f"http://127.0.0.1:{port}"
        ready = wait_for(f"{base}/ready", started)
        chat = first_chat(base, model, started) if model else None
        return ready, chat
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", help="also time the first chat request to this alias")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = [one_run(args.python, args.config, args.model) for _ in range(args.runs)]
    ready = statistics.median(r for r, _ in runs)
    line = f"to /ready: median {ready:.2f} s over {args.runs} runs"
    if args.model:
        chat = statistics.median(c for _, c in runs if c is not None)
        line += f"; to the first chat reply: {chat:.2f} s"
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
