"""Redaction of secrets in log lines: every configured secret value, bearer tokens, and
key-shaped strings (sk-…), wherever they appear in a message or a field."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

MASK = "[REDACTED]"
PATTERNS = re.compile(
    r"(?i:(?<=bearer ))[^\s\"',;]+"  # Authorization: Bearer <token>
    r"|\b(?:sk|rk|pk|gw|key)-[A-Za-z0-9_\-]{8,}"  # provider and gateway key shapes
    r"|(?i:(?<=api[_-]key=))[^\s&\"']+"  # query strings
)
SECRET_FIELDS = frozenset(
    {"authorization", "api_key", "api-key", "x-api-key", "admin_key", "token", "password"}
)
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words


class Redactor:
    """Masks configured secret values and secret-shaped strings: one compiled pattern, so a
    log line costs one regex pass per string field."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.pattern = PATTERNS
        self.set_secrets(secrets)

    def set_secrets(self, secrets: Iterable[str]) -> None:
        # Longest first, so a secret containing another is masked whole.
        unique = sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        alternatives = [re.escape(s) for s in unique] + [PATTERNS.pattern]
        self.pattern = re.compile("|".join(alternatives))

    def text(self, value: str) -> str:
        return self.pattern.sub(MASK, value)

    def value(self, value: Any, key: str = "") -> Any:
        if value is None or isinstance(value, bool | int | float):
            return value
        if key.lower() in SECRET_FIELDS:
            return MASK
        if isinstance(value, str):
            return self.pattern.sub(MASK, value)
        if isinstance(value, dict):
            return {k: self.value(v, str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return self.pattern.sub(MASK, str(value))


def config_secrets(node: Any) -> Iterator[str]:
    """Every SecretStr value in a config (provider keys, admin key, gateway keys, tokens)."""
    if isinstance(node, SecretStr):
        yield node.get_secret_value()
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from config_secrets(getattr(node, name))
    elif isinstance(node, dict):
        for item in node.values():
            yield from config_secrets(item)
    elif isinstance(node, list | tuple):
        for item in node:
            yield from config_secrets(item)
