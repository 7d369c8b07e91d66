"""The API formats a request can arrive in (leaf module: imported by the core types)."""

from __future__ import annotations

from typing import Literal

# The OpenAI operation the pipeline runs (canonical bodies are shaped for one of these).
Endpoint = Literal["chat", "completions", "embeddings"]
# The client-facing wire formats: OpenAI (chat, completions, embeddings), the OpenAI
# Responses API and Anthropic Messages. Every one becomes the canonical request.
Ingress = Literal["openai", "responses", "anthropic"]
