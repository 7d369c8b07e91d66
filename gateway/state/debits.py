"""Debits: increments of counter hashes (spend, reservations given back, experiment
counters), summed while they wait for their batch (gateway/state/write_batch.py)."""

from __future__ import annotations

Debit = tuple[dict[str, dict[str, float]], float | None]  # updates and their ttl


def add_into(total: dict[str, dict[str, float]], updates: dict[str, dict[str, float]]) -> None:
    """Sum `updates` into `total`, per hash field."""
    for key, amounts in updates.items():
        fields = total.get(key)
        if fields is None:
            total[key] = dict(amounts)
            continue
        for field, amount in amounts.items():
            fields[field] = fields.get(field, 0.0) + amount


def merge_debits(batch: list[Debit]) -> Debit:
    """Debits summed per hash field, under the longest of their ttls."""
    merged: dict[str, dict[str, float]] = {}
    ttl = None
    for updates, item_ttl in batch:
        ttl = item_ttl if ttl is None else max(ttl, item_ttl or 0)
        add_into(merged, updates)
    return merged, ttl
