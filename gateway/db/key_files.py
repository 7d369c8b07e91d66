"""The `gateway keys export` format: one JSON object per line, as the state backend keeps
a key's record (id, hash, created_at, policy). Checked line by line on import."""

from __future__ import annotations

import re
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.config.access import KEY_HASH, KEY_ID, KeyPolicy


def parse_key_lines(text: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(hex digest, id, record) per non-empty line; ValueError names the first bad line."""
    out: list[tuple[str, str, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = parse_key_record(line)
        except ValueError as err:
            raise ValueError(f"line {number}: {err}") from None
        if record["id"] in seen:
            raise ValueError(f"line {number}: duplicate id '{record['id']}'")
        seen.add(record["id"])
        out.append((record["hash"].removeprefix("sha256:"), record["id"], record))
    return out


def parse_key_record(line: str) -> dict[str, Any]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ValueError("not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    key_id, key_hash = data.get("id"), data.get("hash")
    if not isinstance(key_id, str) or not re.fullmatch(KEY_ID, key_id):
        raise ValueError("'id' must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    if not isinstance(key_hash, str) or not KEY_HASH.fullmatch(key_hash):
        raise ValueError("'hash' must be sha256: and 64 lowercase hex digits (never a key)")
    try:
        policy = KeyPolicy.model_validate(data.get("policy") or {})
    except ValidationError as exc:
        raise ValueError(f"policy: {exc.errors()[0]['msg']}") from None
    created = data.get("created_at")
    return {
        "id": key_id,
        "hash": key_hash,
        "created_at": created if isinstance(created, str) else None,
        "policy": policy.model_dump(mode="json"),
    }
