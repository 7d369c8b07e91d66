"""Count prompt tokens before a call, offline and without importing litellm.

The BPE ranks come from the tiktoken files litellm ships inside its package (found with
`importlib.util.find_spec`, which does not run litellm's 6-second import). When they are
missing, a chars/4 estimate stands in. Counts are estimates used for limits, caps and cut
streams; providers report the real usage afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("gateway")

CHARS_PER_TOKEN = 4
# OpenAI's chat format adds a few tokens around each message and primes the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_REPLY_PRIMER = 3
# tiktoken caches its downloads under sha1(url); litellm bundles those cache files.
BUNDLED = {
    "o200k_base": "fb374d419588a4632f3f557e76b4b70aebbca790",
    "cl100k_base": "9b5ad71b2ce5302211f9c61530b329a4922fc6a4",
}
PATTERNS = {
    "o200k_base": "|".join(
        [
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\p{N}{1,3}""",
            r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
            r"""\s*[\r\n]+""",
            r"""\s+(?!\S)""",
            r"""\s+""",
        ]
    ),
    "cl100k_base": r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""",  # noqa: E501
}
SPECIAL = {
    "o200k_base": {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
    "cl100k_base": {"<|endoftext|>": 100257, "<|endofprompt|>": 100276},
}


class Encoder(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


class CharEstimate:
    """The fallback: about four characters per token."""

    name = "chars/4"

    def encode_ordinary(self, text: str) -> list[int]:
        return [0] * -(-len(text) // CHARS_PER_TOKEN)


_lock = threading.Lock()


@lru_cache(maxsize=1)
def encoder() -> Encoder:
    """The tokenizer, loaded once (about 0.3 s) on first use; thread-safe."""
    with _lock:
        for name in ("o200k_base", "cl100k_base"):
            path = bundled_file(name)
            if path is not None:
                try:
                    return _load(name, path)
                except Exception:
                    log.warning("could not load bundled tokenizer %s", name, exc_info=True)
        log.warning("no bundled tokenizer found; token counts are estimated as chars/4")
        return CharEstimate()


def bundled_file(name: str) -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "litellm_core_utils" / "tokenizers" / BUNDLED[name]
        if path.is_file():
            return path
    return None


def _load(name: str, path: Path) -> Encoder:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    return tiktoken.Encoding(
        name=name,
        pat_str=PATTERNS[name],
        mergeable_ranks=load_tiktoken_bpe(str(path)),
        special_tokens=SPECIAL[name],
    )


def count_text(text: str) -> int:
    return len(encoder().encode_ordinary(text)) if text else 0


def count_prompt_tokens(body: dict[str, Any], endpoint: str) -> int:
    """Tokens of the request's input: chat messages (and tools), a prompt, or embedding input."""
    if endpoint == "chat":
        return count_messages(body.get("messages") or []) + _count_json(body.get("tools"))
    source = body.get("prompt") if endpoint == "completions" else body.get("input")
    return sum(count_text(t) for t in _texts(source))


def count_messages(messages: Iterable[Any]) -> int:
    total = TOKENS_REPLY_PRIMER
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += TOKENS_PER_MESSAGE
        for key, value in message.items():
            if key == "content":
                total += sum(count_text(t) for t in _texts(value))
            elif isinstance(value, str):
                total += count_text(value)
            elif value is not None:
                total += _count_json(value)
    return total


def _texts(value: Any) -> Iterable[str]:
    """Strings in a content value: a string, a list of strings or of typed parts."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for part in value:
            if isinstance(part, str):
                yield part
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                yield part["text"]
            elif isinstance(part, list):  # token arrays (completions / embeddings input)
                yield " " * (len(part) * CHARS_PER_TOKEN)


def _count_json(value: Any) -> int:
    if not value:
        return 0
    import orjson

    return count_text(orjson.dumps(value).decode())
