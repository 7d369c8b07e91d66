"""Offline evaluation of the semantic matcher on labelled prompt pairs.

Each JSONL line is `{"a": cached prompt, "b": new prompt, "same": bool, "kind": str}`
(see shared/eval/README.md), with an optional `family`: the look-alike family a pair
exercises (for a look-alike, its kind; for a paraphrase, the family whose guard must keep
it, e.g. "number" for "1,000" / "one thousand"). Every pair is embedded, scored by cosine
and judged by `matcher.decide`; the report gives precision (hits that were right) and
recall (true pairs that hit) overall and per family, and lists the false hits and misses.

Two labelled sets ship in `eval_data/` (both written for this cache, 26 look-alike
kinds): `dev` (pairs_dev.jsonl), which the threshold and guards were tuned on, and
`heldout` (pairs_heldout.jsonl), which they never were. Backs `gateway cache eval`.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from gateway.cache.embedders import Embedder
from gateway.cache.matcher import Decision, MatchPolicy, decide

SHIPPED = {"dev": "pairs_dev.jsonl", "heldout": "pairs_heldout.jsonl"}


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    same: bool
    kind: str
    family: str = ""

    @property
    def group(self) -> str:
        return self.family or self.kind


@dataclass(frozen=True)
class Judged:
    pair: Pair
    decision: Decision


@dataclass
class EvalReport:
    threshold: float
    judged: list[Judged] = field(default_factory=list)

    @property
    def hits(self) -> list[Judged]:
        return [j for j in self.judged if j.decision.serve]

    @property
    def false_hits(self) -> list[Judged]:
        return [j for j in self.hits if not j.pair.same]

    @property
    def misses(self) -> list[Judged]:
        return [j for j in self.judged if j.pair.same and not j.decision.serve]

    @property
    def positives(self) -> int:
        return sum(j.pair.same for j in self.judged)

    @property
    def precision(self) -> float:
        """Right hits over all hits; 1.0 when nothing hit (nothing wrong was served)."""
        return 1.0 - len(self.false_hits) / len(self.hits) if self.hits else 1.0

    @property
    def recall(self) -> float:
        true_hits = len(self.hits) - len(self.false_hits)
        return true_hits / self.positives if self.positives else 0.0


def load_pairs(path: str | Path) -> list[Pair]:
    """Read the JSONL pairs; a malformed line raises ValueError naming its line number."""
    pairs = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            pairs.append(_pair(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{number}: not a pair ({exc})") from exc
    return pairs


def _pair(row: object) -> Pair:
    if not isinstance(row, dict):
        raise TypeError("a line must be a JSON object")
    texts = row["a"], row["b"], row["kind"], row.get("family", "")
    if not all(isinstance(t, str) for t in texts) or not isinstance(row["same"], bool):
        raise TypeError("a, b, kind and family must be strings, same a boolean")
    return Pair(row["a"], row["b"], row["same"], row["kind"], row.get("family", ""))


def shipped_path(name: str) -> Path:
    """The file of a labelled set shipped with the package ("dev" or "heldout")."""
    return Path(__file__).parent / "eval_data" / SHIPPED[name]


async def evaluate(path: str | Path, embedder: Embedder, policy: MatchPolicy) -> EvalReport:
    """Embed both sides of every pair, take the cosine, and judge each pair with `decide`."""
    pairs = load_pairs(path)
    report = EvalReport(threshold=policy.threshold)
    if not pairs:
        return report
    vectors_a = await embedder.embed([p.a for p in pairs])
    vectors_b = await embedder.embed([p.b for p in pairs])
    similarities = (vectors_a * vectors_b).sum(axis=1)
    for pair, similarity in zip(pairs, similarities, strict=True):
        report.judged.append(Judged(pair, decide(float(similarity), pair.a, pair.b, policy)))
    return report


def family_rows(report: EvalReport) -> list[str]:
    """One line per family: pairs, true pairs, hits, false hits, precision, recall."""
    groups: dict[str, list[Judged]] = defaultdict(list)
    for judged in report.judged:
        groups[judged.pair.group].append(judged)
    lines = [
        f"{'family':<22}{'pairs':>6}{'true':>6}{'hits':>6}{'false':>6}{'prec':>7}{'recall':>7}"
    ]
    for name in sorted(groups):
        part = EvalReport(report.threshold, groups[name])
        recall = f"{part.recall:.3f}" if part.positives else "-"
        lines.append(
            f"{name:<22}{len(part.judged):>6}{part.positives:>6}{len(part.hits):>6}"
            f"{len(part.false_hits):>6}{part.precision:>7.3f}{recall:>7}"
        )
    return lines


def format_report(report: EvalReport) -> str:
    """A plain-text summary: precision, recall, counts, a table by family, false hits and
    misses by kind."""
    lines = [
        f"threshold {report.threshold:.3f}: precision {report.precision:.3f}, "
        f"recall {report.recall:.3f}",
        f"pairs {len(report.judged)}, true pairs {report.positives}, hits {len(report.hits)}, "
        f"false hits {len(report.false_hits)}, misses {len(report.misses)}",
        *family_rows(report),
    ]
    for title, group in (("false hits", report.false_hits), ("misses", report.misses)):
        counts = Counter(j.pair.kind for j in group)
        summary = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items())) or "none"
        lines.append(f"{title} by kind: {summary}")
        lines += [
            f"  [{j.pair.kind}] {j.decision.similarity:.3f} {j.decision.reason}: "
            f"{j.pair.a!r} -> {j.pair.b!r}"
            for j in group
        ]
    return "\n".join(lines)


def run_eval_command(path: str | None, threshold: float | None) -> int:
    """`gateway cache eval [FILE | dev | heldout] [--threshold X]` with the local MiniLM
    embedder; no FILE: the shipped dev set.

    Exit 0 when evaluated, 2 when the file or the model cannot be read.
    """
    from gateway.cache.embedders import LocalMiniLMEmbedder

    path = str(shipped_path(path or "dev")) if path in (None, *SHIPPED) else path
    policy = MatchPolicy() if threshold is None else MatchPolicy(threshold=threshold)
    try:
        report = asyncio.run(evaluate(path or "", LocalMiniLMEmbedder(), policy))
    except (OSError, ValueError, ModuleNotFoundError) as exc:
        print(f"gateway cache eval: {exc}", file=sys.stderr)
        return 2
    print(format_report(report))
    return 0
