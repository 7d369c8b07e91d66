"""The OpenAI Responses API as an ingress format: parse, render, stream events, store."""
