"""OpenTelemetry: a span per request, per stage and per upstream attempt, with GenAI
attributes; the trace id in the access log; GenAI metrics. In-memory exporter and reader."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

import openai
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.conftest import upstream_config
from tests.servers import RunningServer
from tests.upstream import FakeUpstream

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
TRACING = "tracing: {enabled: true, exporter: global, genai_metrics: true}\n"


@pytest.fixture(scope="module")
def metric_reader() -> InMemoryMetricReader:
    reader = InMemoryMetricReader()
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    exporter = InMemorySpanExporter()
    processor = SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    yield exporter
    processor.shutdown()


@pytest.fixture
def traced_gateway(
    start_gateway: Callable[[str], RunningServer],
    upstream_server: tuple[FakeUpstream, RunningServer],
    upstream: FakeUpstream,
    metric_reader: InMemoryMetricReader,
) -> RunningServer:
    return start_gateway(upstream_config(upstream_server[1].url, TRACING))


def chat(gateway: RunningServer, stream: bool) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key="k", max_retries=0)
    messages = [{"role": "user", "content": "hi"}]
    headers = {"traceparent": TRACEPARENT}
    if stream:
        list(
            client.chat.completions.create(
                model="gpt-test", messages=messages, stream=True, extra_headers=headers
            )
        )
    else:
        client.chat.completions.create(
            model="gpt-test", messages=messages, max_tokens=7, extra_headers=headers
        )


def finished_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    """Spans once the request span has ended (it ends after the last byte was sent)."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        spans = list(exporter.get_finished_spans())
        if by_kind(spans, trace.SpanKind.SERVER):
            return spans
        time.sleep(0.01)
    raise AssertionError("the request span never ended")


def by_kind(spans: list[ReadableSpan], kind: trace.SpanKind) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == kind]


@pytest.mark.parametrize("stream", [False, True])
def test_request_stage_and_upstream_spans_carry_genai_attributes(
    traced_gateway: RunningServer, spans: InMemorySpanExporter, stream: bool
) -> None:
    chat(traced_gateway, stream)
    finished = finished_spans(spans)
    [server] = by_kind(finished, trace.SpanKind.SERVER)
    [client] = by_kind(finished, trace.SpanKind.CLIENT)
    stages = by_kind(finished, trace.SpanKind.INTERNAL)
    assert server.name == "chat gpt-test"
    assert format(server.context.trace_id, "032x") == TRACE_ID  # continues the caller's trace
    assert server.attributes["gen_ai.operation.name"] == "chat"
    assert server.attributes["gen_ai.request.model"] == "gpt-test"
    assert server.attributes["gen_ai.usage.output_tokens"] > 0
    assert server.attributes["http.response.status_code"] == 200
    assert {"gateway.route", "gateway.dispatch"} <= {s.name for s in stages}
    assert all(s.context.trace_id == server.context.trace_id for s in finished)
    ids = {s.context.span_id for s in finished}
    assert all(s.parent is not None and s.parent.span_id in ids for s in [client, *stages])
    assert client.name == "chat upstream-model"
    assert client.attributes["gen_ai.system"] == "openai"
    assert client.attributes["server.address"] == "127.0.0.1"
    assert client.attributes["gen_ai.usage.input_tokens"] > 0
    if not stream:
        assert server.attributes["gen_ai.request.max_tokens"] == 7


def test_failed_upstream_attempt_is_an_error_span(
    traced_gateway: RunningServer, spans: InMemorySpanExporter, upstream: FakeUpstream
) -> None:
    upstream.reset(status=400)
    with pytest.raises(openai.BadRequestError):
        chat(traced_gateway, stream=False)
    finished = finished_spans(spans)
    clients = by_kind(finished, trace.SpanKind.CLIENT)
    assert clients and all(s.status.status_code == trace.StatusCode.ERROR for s in clients)
    assert "error.type" in by_kind(finished, trace.SpanKind.SERVER)[0].attributes


def test_access_log_carries_the_trace_id(
    traced_gateway: RunningServer, spans: InMemorySpanExporter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        chat(traced_gateway, stream=False)
        finished_spans(spans)  # the access line is written when the reply closes
    access = [r for r in caplog.records if r.name == "gateway.access"]
    assert [getattr(r, "trace_id", None) for r in access] == [TRACE_ID]


def test_genai_metrics_are_recorded(
    traced_gateway: RunningServer, metric_reader: InMemoryMetricReader
) -> None:
    chat(traced_gateway, stream=True)
    data = metric_reader.get_metrics_data()
    names = {
        m.name
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for m in scope.metrics
    }
    assert {
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.server.time_to_first_token",
    } <= names
