"""`gateway cache eval FILE.jsonl` through the real command line and the real embedder."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.cli import main

PAIRS = [
    {
        "a": "What is the tallest mountain in Africa?",
        "b": "Which mountain is the highest in Africa?",
        "same": True,
        "kind": "paraphrase",
    },
    {
        "a": "What is the capital of Austria?",
        "b": "What is the capital of Australia?",
        "same": False,
        "kind": "entity",
    },
]


def test_eval_prints_precision_recall_and_false_hits_by_kind(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_bytes(b"\n".join(orjson.dumps(p) for p in PAIRS))
    assert main(["cache", "eval", str(pairs), "--threshold", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "threshold 0.500" in out and "precision" in out and "recall" in out
    assert "false hits by kind" in out


def test_eval_of_a_missing_file_fails_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["cache", "eval", str(tmp_path / "absent.jsonl")]) == 2
    assert "absent.jsonl" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["dev", "heldout"])
def test_eval_runs_a_shipped_set_by_name(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "eval", name]) == 0
    out = capsys.readouterr().out
    assert "family" in out and "negating-affix" in out and "number-magnitude" in out
