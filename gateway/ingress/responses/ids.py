"""Ids in OpenAI's style: a type prefix and unguessable random hex."""

from __future__ import annotations

import os
import re
from typing import Any

# What a stored response id may look like (ours, or a native upstream's): the storage key
# is built from it, so nothing longer or stranger ever reaches the backend.
RESPONSE_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")


class Ids:
    """The ids of one response and its items: one unguessable random base per response
    (one system call, not one per id) and a counter."""

    __slots__ = ("_base", "_count")

    def __init__(self) -> None:
        self._base = os.urandom(20).hex()  # what secrets.token_hex does, less two calls
        self._count = 0

    def new(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._base}{self._count:04x}"


def is_response_id(value: Any) -> bool:
    return isinstance(value, str) and RESPONSE_ID.fullmatch(value) is not None


def shown(value: Any) -> str:
    """A client value fit for an error message: a short string, or just its JSON type."""
    if isinstance(value, str):
        return repr(value[:64])
    return "null" if value is None else type(value).__name__
