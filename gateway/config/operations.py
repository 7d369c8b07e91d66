"""Config sections for operating the gateway: hot reload and OpenTelemetry."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReloadConfig(Section):
    on_sighup: bool = Field(True, description="Reload the config file on SIGHUP.")
    watch_file: bool = Field(False, description="Reload when the config file changes.")
    poll_seconds: float = Field(2.0, gt=0, description="How often the file is checked.")


class TracingConfig(Section):
    """OpenTelemetry; needs `pip install 'gateway[otel]'`. The exporter follows OTEL_* env."""

    enabled: bool = Field(False, description="A span per request, stage and upstream attempt.")
    exporter: Literal["otlp", "console", "global"] = Field(
        "otlp", description="otlp (by OTEL_* env), console, or the process's global provider."
    )
    genai_metrics: bool = Field(
        False, description="Also record OTel GenAI metrics (gen_ai.client.token.usage …)."
    )
    service_name: str = Field("gateway", description="Used when OTEL_SERVICE_NAME is unset.")
