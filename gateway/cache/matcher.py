"""The semantic-cache verdict: may the answer cached for one prompt be served for another?

Called by the cache stage after a vector lookup found the nearest cached prompt. Two
lines of defence, both required: the embeddings must be close (`threshold`), and every
guard in `gateway.cache.guards` must agree (same numbers, units, entities, payload,
negation, poles, direction, format, kind of question, no swapped word). A miss costs one
upstream call; a wrong hit serves a wrong answer, so every doubt is a miss.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.cache.guards import GUARDS, features

DEFAULT_THRESHOLD = 0.76  # cosine, all-MiniLM-L6-v2; tuned on eval_data/pairs_dev.jsonl (eval.py)


@dataclass(frozen=True)
class MatchPolicy:
    """How strict the semantic cache is.

    threshold: the least cosine similarity of the two prompts' embeddings for a hit.
    guards: the guard names to apply (all by default); a name not in GUARDS is an error.
    """

    threshold: float = DEFAULT_THRESHOLD
    guards: tuple[str, ...] = tuple(name for name, _ in GUARDS)

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold: {self.threshold} is not a cosine in [-1, 1]")
        unknown = sorted(set(self.guards) - {name for name, _ in GUARDS})
        if unknown:
            raise ValueError(f"guards: unknown guard {unknown[0]!r}")


@dataclass(frozen=True)
class Decision:
    """The verdict: serve or not, the similarity it saw, and why ("hit", "below-threshold",
    "guard:number", ...; the first failing guard names the reason)."""

    serve: bool
    similarity: float
    reason: str


def decide(similarity: float, cached_text: str, new_text: str, policy: MatchPolicy) -> Decision:
    """Serve `cached_text`'s answer for `new_text` only if close enough and no guard objects."""
    if similarity < policy.threshold:
        return Decision(False, similarity, "below-threshold")
    cached, new = features(cached_text), features(new_text)
    for name, agree in GUARDS:
        if name in policy.guards and not agree(cached, new):
            return Decision(False, similarity, f"guard:{name}")
    return Decision(True, similarity, "hit")
