"""OpenTelemetry tracing and GenAI metrics, built only when `tracing.enabled` (the SDK is
the optional `otel` extra and is imported only here).

One SERVER span per request, named "{operation} {model}" as the GenAI semantic
conventions say, ending when the reply does (streams included); an INTERNAL child span
per pipeline stage; a CLIENT span per upstream attempt. Spans go to OTLP as configured by
the standard OTEL_* variables (exporter "otlp"), to stderr ("console"), or to whatever
provider the process already set ("global": auto-instrumentation, tests).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from gateway.config.operations import TracingConfig
from gateway.config.schema import ProviderConfig
from gateway.context import RequestContext
from gateway.types import Endpoint, Next, Provider, Reply, Stage

OPERATIONS = {"chat": "chat", "completions": "text_completion", "embeddings": "embeddings"}
REQUEST_PARAMS = {  # request body field -> GenAI attribute
    "max_tokens": "gen_ai.request.max_tokens",
    "temperature": "gen_ai.request.temperature",
    "top_p": "gen_ai.request.top_p",
    "seed": "gen_ai.request.seed",
}


class Tracing:
    def __init__(self, config: TracingConfig) -> None:
        from opentelemetry import metrics, trace
        from opentelemetry.propagate import extract

        self.trace = trace
        self.extract = extract
        self.tracer = _tracer_provider(config).get_tracer("gateway")
        self.genai = None
        if config.genai_metrics:
            self.genai = GenAIMetrics(_meter_provider(config, metrics))

    # -- the request span, around the outermost stage
    def request(self, stage: Stage, call_next: Next) -> Next:
        trace = self.trace

        async def call(ctx: RequestContext) -> Reply:
            operation = OPERATIONS[ctx.endpoint]
            span = self.tracer.start_span(
                f"{operation} {ctx.alias}".strip(),
                context=self.extract(ctx.headers),
                kind=trace.SpanKind.SERVER,
                attributes=_request_attributes(ctx, operation),
            )
            ctx.log_fields["trace_id"] = format(span.get_span_context().trace_id, "032x")
            with trace.use_span(span, end_on_exit=False):
                reply = await stage(ctx, call_next)

            async def end(done: Reply) -> None:
                _finish_request_span(span, ctx, done)
                if self.genai is not None:
                    self.genai.record(ctx, done, operation)
                span.end()

            reply.on_complete(end)
            return reply

        return call

    # -- a span per stage
    def stage(self, stage: Stage, call_next: Next) -> Next:
        name = f"gateway.{type(stage).__name__.lower()}"

        async def call(ctx: RequestContext) -> Reply:
            with self.tracer.start_as_current_span(name):
                return await stage(ctx, call_next)

        return call

    # -- a span per upstream attempt
    def providers(
        self, providers: Mapping[str, Provider], configs: Mapping[str, ProviderConfig]
    ) -> dict[str, Provider]:
        return {
            name: p if isinstance(p, TracedProvider) else TracedProvider(p, configs[name], self)
            for name, p in providers.items()
        }


class TracedProvider:
    """A provider whose every call is a CLIENT span, ended when the reply closes."""

    def __init__(self, inner: Provider, config: ProviderConfig, tracing: Tracing) -> None:
        self.inner = inner
        self.tracing = tracing
        self.attributes: dict[str, Any] = {"gen_ai.system": config.litellm_provider or config.kind}
        if config.base_url:
            url = urlsplit(config.base_url)
            self.attributes["server.address"] = url.hostname or ""
            self.attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send(self, endpoint: Endpoint, body: dict[str, Any], *, stream: bool) -> Reply:
        trace = self.tracing.trace
        operation = OPERATIONS[endpoint]
        span = self.tracing.tracer.start_span(
            f"{operation} {body.get('model', '')}".strip(),
            kind=trace.SpanKind.CLIENT,
            attributes={
                **self.attributes,
                "gen_ai.operation.name": operation,
                "gen_ai.request.model": str(body.get("model", "")),
            },
        )
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=True):
                reply = await self.inner.send(endpoint, body, stream=stream)
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_status(trace.StatusCode.ERROR)
            span.end()
            raise

        async def end(done: Reply) -> None:
            _set_usage(span, done)
            if done.error is not None:
                span.set_attribute("error.type", type(done.error).__name__)
                span.set_status(trace.StatusCode.ERROR)
            span.end()

        reply.on_complete(end)
        return reply

    async def aclose(self) -> None:
        await self.inner.aclose()


class GenAIMetrics:
    """The OTel GenAI client metrics, recorded when each request ends."""

    def __init__(self, meter_provider: Any) -> None:
        meter = meter_provider.get_meter("gateway")
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Tokens used per request."
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="Request duration."
        )
        self.ttft = meter.create_histogram(
            "gen_ai.server.time_to_first_token", unit="s", description="Time to first token."
        )

    def record(self, ctx: RequestContext, reply: Reply, operation: str) -> None:
        labels: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.request.model": ctx.alias if ctx.target_alias else "unknown",
        }
        if reply.error is not None:
            labels["error.type"] = type(reply.error).__name__
        self.duration.record(time.perf_counter() - ctx.started, labels)
        if ctx.first_byte is not None:
            self.ttft.record(ctx.first_byte - ctx.started, labels)
        if reply.usage is not None:
            self.tokens.record(reply.usage.prompt_tokens, {**labels, "gen_ai.token.type": "input"})
            self.tokens.record(
                reply.usage.completion_tokens, {**labels, "gen_ai.token.type": "output"}
            )


def build_tracing(config: TracingConfig, previous: Tracing | None = None) -> Tracing | None:
    """The tracer outlives config reloads: exporters and their queues are built once."""
    if not config.enabled:
        return None
    return previous or Tracing(config)


def _request_attributes(ctx: RequestContext, operation: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.request.model": ctx.alias,
        "gateway.request_id": ctx.request_id,
        "gateway.stream": ctx.stream,
    }
    for field, attribute in REQUEST_PARAMS.items():
        value = ctx.body.get(field)
        if isinstance(value, int | float) and not isinstance(value, bool):
            attributes[attribute] = value
    return attributes


def _finish_request_span(span: Any, ctx: RequestContext, reply: Reply) -> None:
    span.set_attribute("http.response.status_code", reply.status)
    if ctx.deployment:
        span.set_attribute("gateway.deployment", ctx.deployment)
    if ctx.target_alias and ctx.target_alias != ctx.alias:
        span.set_attribute("gateway.target_model", ctx.target_alias)
    if ctx.first_byte is not None:
        span.set_attribute("gen_ai.server.time_to_first_token", ctx.first_byte - ctx.started)
    _set_usage(span, reply)
    if reply.error is not None:
        from opentelemetry.trace import StatusCode

        span.set_attribute("error.type", reply.error.error_type)
        if reply.status >= 500:
            span.set_status(StatusCode.ERROR, reply.error.message)


def _set_usage(span: Any, reply: Reply) -> None:
    if reply.body is not None and isinstance(reply.body.get("model"), str):
        span.set_attribute("gen_ai.response.model", reply.body["model"])
    if reply.usage is not None:
        span.set_attribute("gen_ai.usage.input_tokens", reply.usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", reply.usage.completion_tokens)


def _tracer_provider(config: TracingConfig) -> Any:
    from opentelemetry import trace

    if config.exporter == "global":
        return trace.get_tracer_provider()
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    provider = TracerProvider(resource=_resource(config))
    if config.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    else:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    return provider


def _meter_provider(config: TracingConfig, metrics: Any) -> Any:
    if config.exporter == "global":
        return metrics.get_meter_provider()
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import (
        ConsoleMetricExporter,
        PeriodicExportingMetricReader,
    )

    if config.exporter == "otlp":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        exporter: Any = OTLPMetricExporter()
    else:
        exporter = ConsoleMetricExporter()
    return MeterProvider(
        resource=_resource(config),
        metric_readers=[PeriodicExportingMetricReader(exporter)],
    )


def _resource(config: TracingConfig) -> Any:
    from opentelemetry.sdk.resources import Resource

    if os.environ.get("OTEL_SERVICE_NAME"):
        return Resource.create()  # the standard variable wins over the config default
    return Resource.create({"service.name": config.service_name})
