"""Anthropic Messages: parse to the canonical (Chat Completions) request, render replies,
stream events and errors in Anthropic's format; translate both ways for providers."""
