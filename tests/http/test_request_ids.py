"""Request ids: the client's when well-formed, else new ones unique per process and fork."""

from __future__ import annotations

import os

from gateway.http.openai import request_id


def test_a_well_formed_client_id_is_kept_and_a_bad_one_replaced() -> None:
    assert request_id({"x-request-id": "agent-7:turn.3"}) == "agent-7:turn.3"
    made = request_id({"x-request-id": "bad id\n"})
    assert made != "bad id\n" and len(made) == 32


def test_new_ids_are_32_hex_digits_and_never_repeat() -> None:
    ids = [request_id({}) for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_a_forked_worker_makes_ids_of_its_own() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id goes back through the pipe
        os.write(write, request_id({}).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    parent = request_id({})
    assert len(child) == 32 and child[:16] != parent[:16]
