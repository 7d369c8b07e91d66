"""Ids in OpenAI's style: a type prefix and unguessable random hex."""

from __future__ import annotations

import os
import re
from typing import Any

# What a stored response id may look like (ours, or a native upstream's): the storage key
# is built from it, so nothing longer or stranger ever reaches the backend.
RESPONSE_ID = re.compile(r"[A-Za-z0-9_\-]{1,128}")
BASE_BYTES = 20
BASES_PER_READ = 256


class _RandomBases:
    """Unguessable hex strings, each used once, read from the OS in batches: a read per
    response cost ~2 us in the request (a system call, measured on the VM) against ~0.1.
    A forked child starts with none, so no two processes share one."""

    def __init__(self) -> None:
        self._left: list[str] = []
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._left = []

    def take(self) -> str:
        try:
            return self._left.pop()  # atomic: two threads never take the same one
        except IndexError:
            raw = os.urandom(BASE_BYTES * BASES_PER_READ).hex()
            step = BASE_BYTES * 2
            self._left = [raw[i : i + step] for i in range(0, len(raw), step)]
            return self._left.pop()


_bases = _RandomBases()


class Ids:
    """The ids of one response and its items: one unguessable random base per response
    and a counter."""

    __slots__ = ("_base", "_count")

    def __init__(self) -> None:
        self._base = _bases.take()
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
