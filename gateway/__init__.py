"""gateway: a streaming, OpenAI-compatible LLM inference gateway."""

__version__ = "0.1.0"
