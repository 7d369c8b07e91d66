"""Dispatch policy: load balancing, retries with backoff, circuit breakers, fallbacks."""
