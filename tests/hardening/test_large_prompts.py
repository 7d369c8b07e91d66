"""A maximum-size prompt does not stall the worker: token counting stays cheap, so other
requests (/health) are answered meanwhile (issue 10, item 10)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from gateway.accounting.tokens import EXACT_BUDGET_CHARS, count_prompt_tokens, count_text
from tests.gateway_process import gateway_process
from tests.hardening.harness import CHAT

MAX_BODY = 10 * 1024 * 1024
# fixed usage: the mock would otherwise count the words of a 10 MB prompt
CONFIG = f"""
server: {{max_body_bytes: {MAX_BODY}}}
providers:
  mock: {{kind: mock, mock: {{mode: fixed, prompt_tokens: 1, completion_tokens: 1}}}}
models:
  big: {{deployments: [{{provider: mock, model: m}}]}}
caps:
  models:
    big: {{max_input_tokens: 100000000}}
"""


def health_latencies(url: str, stop: threading.Event) -> list[float]:
    latencies: list[float] = []
    with httpx.Client(timeout=30) as client:
        while not stop.is_set():
            started = time.perf_counter()
            client.get(url + "/health").raise_for_status()
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
    return latencies


@pytest.mark.parametrize("filler", ["a", "数", "hello world "], ids=["one-run", "cjk", "prose"])
def test_health_answers_quickly_while_a_maximum_size_prompt_is_counted(
    filler: str, tmp_path: Path
) -> None:
    chars = (MAX_BODY - 200) * len(filler) // len(filler.encode())
    prompt = (filler * (chars // len(filler) + 1))[:chars]
    body = orjson.dumps({"model": "big", "messages": [{"role": "user", "content": prompt}]})
    path = tmp_path / "gateway.yaml"
    path.write_text(CONFIG)
    with gateway_process(path) as gw:
        stop = threading.Event()
        latencies: list[float] = []
        poller = threading.Thread(
            target=lambda: latencies.extend(health_latencies(gw.url, stop)), daemon=True
        )
        poller.start()
        time.sleep(0.2)
        started = time.perf_counter()
        response = httpx.post(
            gw.url + CHAT, content=body, headers={"content-type": "application/json"}, timeout=60
        )
        took = time.perf_counter() - started
        time.sleep(0.1)
        stop.set()
        poller.join(30)
        assert response.status_code == 200, response.text[:300]
        worst = max(latencies)
        print(
            f"\n{len(prompt.encode()) / 1e6:.1f} MB prompt ({filler!r}) answered in "
            f"{took * 1000:.0f} ms; /health worst {worst * 1000:.1f} ms over {len(latencies)}"
        )
        assert worst < 1.0  # generous: a loaded machine; the figure printed is the result


@pytest.mark.parametrize("text", ["hello world " * 100, "数据" * 500, "a" * 3000])
def test_small_inputs_are_counted_exactly(text: str) -> None:
    assert len(text) < EXACT_BUDGET_CHARS
    body = {"messages": [{"role": "user", "content": text}]}
    assert count_prompt_tokens(body, "chat") == count_text(text) + count_text("user") + 6


@pytest.mark.parametrize("filler", ["a", "数", "hello world ", "\U0001f600"])
def test_past_the_budget_the_estimate_is_an_upper_bound(filler: str) -> None:
    text = filler * (EXACT_BUDGET_CHARS // len(filler) + 10)
    body = {"messages": [{"role": "user", "content": "short"}, {"role": "user", "content": text}]}
    estimate = count_prompt_tokens(body, "chat")
    exact = count_text("short") + len(_exact_tokens(text)) + 2 * count_text("user") + 9
    assert exact <= estimate <= exact + len(text.encode())


def _exact_tokens(text: str) -> list[int]:
    from gateway.accounting.tokens import encoder

    return encoder().encode_ordinary(text)
