"""Schema of A/B `experiments`: variants of an alias or route, with weights and overrides."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    # Same rules as gateway.config.schema.Section (which imports this module).
    model_config = ConfigDict(extra="forbid", frozen=True)


# Request fields a variant may set; anything else would change what the experiment measures.
SAMPLING_PARAMS = frozenset(
    {"temperature", "top_p", "frequency_penalty", "presence_penalty", "seed", "stop"}
)


class VariantConfig(Section):
    target: str = Field(description="The model alias or route this variant sends to.")
    weight: float = Field(1.0, ge=0, description="Share of users; 0 keeps it forcible only.")
    system_prompt: str | None = Field(None, description="System prompt added or replacing.")
    system_prompt_mode: Literal["prefix", "replace"] = "prefix"
    params: dict[str, Any] = Field(default_factory=dict, description="Sampling overrides.")
    max_tokens: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _known_params(self) -> VariantConfig:
        unknown = sorted(set(self.params) - SAMPLING_PARAMS)
        if unknown:
            allowed = ", ".join(sorted(SAMPLING_PARAMS))
            raise ValueError(f"params: unknown {', '.join(unknown)} (allowed: {allowed})")
        return self


class ExperimentConfig(Section):
    applies_to: str = Field(description="The alias or route whose requests are split.")
    variants: dict[str, VariantConfig] = Field(min_length=1)
    control: str | None = Field(None, description="Baseline variant (default: the first).")
    enabled: bool = True
    feedback_ttl_seconds: float = Field(
        7 * 24 * 3600.0, gt=0, description="How long feedback can name a request id."
    )

    @model_validator(mode="after")
    def _check_variants(self) -> ExperimentConfig:
        if self.control is not None and self.control not in self.variants:
            raise ValueError(f"control: unknown variant '{self.control}'")
        if not any(v.weight > 0 for v in self.variants.values()):
            raise ValueError("variants: at least one needs a weight above 0")
        return self

    @property
    def control_variant(self) -> str:
        return self.control or next(iter(self.variants))
