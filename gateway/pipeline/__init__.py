"""The request pipeline: an ordered list of stages, outermost first (see build_pipeline)."""

from gateway.pipeline.build import build_pipeline, compose

__all__ = ["build_pipeline", "compose"]
