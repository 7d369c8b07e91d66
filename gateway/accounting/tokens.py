"""Count prompt tokens before a call, offline and without importing litellm.

The BPE ranks come from the tiktoken files litellm ships inside its package (found with
`importlib.util.find_spec`, which does not run litellm's 6-second import). When they are
missing, a chars/4 estimate stands in. Counts are estimates used for limits, caps and cut
streams; providers report the real usage afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("gateway")

CHARS_PER_TOKEN = 4
EXACT_BUDGET_CHARS = 64 * 1024  # per request; past it, an upper bound (TokenCounter)
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


# Agents send the same long system prompt and tool list with every call: texts this long
# are counted once and remembered by a digest (hashing is ~20x cheaper than BPE per byte,
# and keeps no prompt in memory); shorter ones cost less to count than to look up.
RECOUNT_CHARS = 512
COUNTED_TEXTS = 4096
_counts: OrderedDict[bytes, int] = OrderedDict()
_counts_lock = threading.Lock()  # counting may also run in worker threads
# Words every request repeats (roles, names, "auto"): remembered as they are, up to
# SHORT_TEXTS of them (a dict lookup instead of a call into the BPE).
SHORT_CHARS = 16
SHORT_TEXTS = 4096
_short_counts: dict[str, int] = {}


def _short_count(text: str) -> int:
    count = _short_counts.get(text)
    if count is None:
        count = len(encoder().encode_ordinary(text))
        if len(_short_counts) >= SHORT_TEXTS:
            _short_counts.clear()
        _short_counts[text] = count
    return count


def _counted(text: str) -> int:
    key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    with _counts_lock:
        found = _counts.get(key)
        if found is not None:
            _counts.move_to_end(key)
            return found
    count = len(encoder().encode_ordinary(text))
    with _counts_lock:
        _counts[key] = count
        if len(_counts) > COUNTED_TEXTS:
            _counts.popitem(last=False)
    return count


def count_text(text: str) -> int:
    return TokenCounter().text(text)


def count_prompt_tokens(body: dict[str, Any], endpoint: str) -> int:
    """Tokens of the request's input: chat messages (and tools), a prompt, or embedding input.

    Exact for the first EXACT_BUDGET_CHARS characters of the request, an upper bound past
    them (see TokenCounter): counting never holds the event loop for long."""
    counter = TokenCounter()
    if endpoint == "chat":
        return counter.messages(body.get("messages") or []) + counter.json(body.get("tools"))
    source = body.get("prompt") if endpoint == "completions" else body.get("input")
    return counter.content(source)


def count_messages(messages: Iterable[Any]) -> int:
    return TokenCounter().messages(messages)


class TokenCounter:
    """Counts one request's text: exactly while its budget of characters lasts, then at
    one token per UTF-8 byte.

    The BPE cost grows with input size (and worse than linearly for long runs of one
    class of character: 1 MB of `a` takes about a second), and it runs on the event loop.
    A byte-level BPE token covers at least one byte, so the byte count is a safe upper
    bound: limits and caps err towards refusing, and the provider's reported usage
    settles the real figure afterwards. The budget (64 Ki characters, about 16k tokens
    of prose) costs at most ~25 ms on adversarial text, well under 1 ms on prose.
    """

    def __init__(self, budget: int = EXACT_BUDGET_CHARS) -> None:
        self.left = budget

    def text(self, text: str) -> int:
        if not text:
            return 0
        if len(text) <= self.left:
            self.left -= len(text)
            if len(text) <= SHORT_CHARS:
                return _short_count(text)
            if len(text) < RECOUNT_CHARS:
                return len(encoder().encode_ordinary(text))
            return _counted(text)
        self.left = 0
        return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))

    def messages(self, messages: Iterable[Any]) -> int:
        total = TOKENS_REPLY_PRIMER
        for message in messages:
            if not isinstance(message, dict):
                continue
            total += TOKENS_PER_MESSAGE
            for key, value in message.items():
                if key == "content":
                    total += self.content(value)
                elif isinstance(value, str):
                    total += self.text(value)
                elif value is not None:
                    total += self.json(value)
        return total

    def content(self, value: Any) -> int:
        """A content value: a string, a list of strings, of typed parts or of token ids."""
        if isinstance(value, str):
            return self.text(value)
        total = 0
        if isinstance(value, list):
            for part in value:
                if isinstance(part, str):
                    total += self.text(part)
                elif isinstance(part, dict) and isinstance(part.get("text"), str):
                    total += self.text(part["text"])
                elif isinstance(part, list):  # token arrays (completions / embeddings input)
                    total += len(part)
        return total

    def json(self, value: Any) -> int:
        if not value:
            return 0
        import orjson

        return self.text(orjson.dumps(value).decode())
