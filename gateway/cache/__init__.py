"""Caching: exact and semantic response caches."""
