"""Response and item ids: unguessable bases taken from batched OS randomness, never twice."""

from __future__ import annotations

import os

from gateway.ingress.responses.ids import BASES_PER_READ, Ids


def test_ids_stay_distinct_across_batches() -> None:
    ids = [Ids().new("resp") for _ in range(BASES_PER_READ * 3)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == len("resp_") + 40 + 4 for i in ids)


def test_a_forked_child_does_not_reuse_the_parents_bases() -> None:
    Ids()  # the parent holds a batch
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(write, Ids().new("resp").encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 128).decode()
    os.close(read)
    os.close(write)
    assert child != Ids().new("resp")
