"""The package's import rules, checked on the source: a new cycle or upward import fails here.

- No import cycles, counting imports made only for type checking.
- A pipeline stage never imports another stage: stages share only lower layers
  (context, request, services, accounting, ...); only the builders compose them.
- Nothing below the application layer imports it (pipeline, HTTP, runtime, CLI).
- HTTP handlers run the pipeline or lower services, never a stage's internals.
"""

from __future__ import annotations

import pytest

from tests.architecture.imports import cycles, graph

BUILDERS = {"gateway.pipeline", "gateway.pipeline.build", "gateway.pipeline.access"}
APPLICATION = (
    "gateway.pipeline",
    "gateway.http",
    "gateway.runtime",
    "gateway.app",
    "gateway.serve",
    "gateway.cli",
    "gateway.reload",
    "gateway.shutdown",
    "gateway.generations",
    "gateway.gunicorn_conf",
    "gateway.__main__",
)


def _is_stage(module: str) -> bool:
    return module.startswith("gateway.pipeline.") and module not in BUILDERS


def test_no_import_cycles() -> None:
    assert cycles(graph(include_typing=True)) == []


@pytest.mark.xfail(strict=True, reason="auth stage still imports ratelimit helpers (moving)")
def test_no_stage_imports_another_stage() -> None:
    edges = graph(include_typing=True)
    bad = {m: sorted(d for d in deps if _is_stage(d)) for m, deps in edges.items() if _is_stage(m)}
    assert {m: d for m, d in bad.items() if d} == {}


def test_lower_layers_never_import_the_application() -> None:
    edges = graph(include_typing=True)
    bad = {
        module: sorted(d for d in deps if d.startswith(APPLICATION))
        for module, deps in edges.items()
        if not module.startswith(APPLICATION)
    }
    assert {m: d for m, d in bad.items() if d} == {}


@pytest.mark.xfail(strict=True, reason="one Authenticator replaces the HTTP auth copies")
def test_http_handlers_never_import_stages() -> None:
    edges = graph(include_typing=True)
    bad = {
        module: sorted(d for d in deps if _is_stage(d))
        for module, deps in edges.items()
        if module.startswith("gateway.http")
    }
    assert {m: d for m, d in bad.items() if d} == {}
