"""prometheus-client's multiprocess mode, for several workers behind one port.

Metric objects choose where their values live when prometheus_client is imported: with
PROMETHEUS_MULTIPROC_DIR set they write to mmap files in that directory, whatever
registry they are registered in. So the directory is set up by the parent before any
worker starts, and /metrics merges every worker's files instead of reading its own
registry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    return os.environ.get(ENV) or None


def prepare_multiprocess_dir() -> str:
    """Make (or empty) the shared directory and export it to the workers to come.
    Files left by an earlier run would add old counts to the new one."""
    path = multiprocess_dir() or tempfile.mkdtemp(prefix="gateway-metrics-")
    target = Path(path)
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    os.environ[ENV] = str(target)
    return str(target)


def exposition(registry: CollectorRegistry) -> bytes:
    """The text exposition: this process's registry, or every worker's files merged."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    if multiprocess_dir() is None:
        return generate_latest(registry)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def worker_exited(pid: int) -> None:
    """Drop a dead worker's live gauges (in-flight requests); counters keep its counts."""
    from prometheus_client import multiprocess

    if multiprocess_dir() is not None:
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
