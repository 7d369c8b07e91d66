"""Shared state: `memory` for one process (the embedded default), `redis` for many."""

from gateway.state.backend import StateBackend, build_state

__all__ = ["StateBackend", "build_state"]
