"""Thin HTTP handlers: OpenAI endpoints, health, readiness, metrics."""
