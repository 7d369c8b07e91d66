"""JSON logs through the standard logging module: one object per line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import sys
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from gateway.observability.redaction import Redactor, config_secrets

if TYPE_CHECKING:
    from gateway.config.schema import GatewayConfig

_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "color_message"}
# A default object repr ("<litellm._logging.X object at 0x7f…>") says nothing to a reader
# and changes every run: a record attribute holding one (litellm stamps records with a
# bare `object()`) is left out, and one inside text loses its address.
_OBJECT_REPR = re.compile(r"<([\w.]+) object at 0x[0-9a-fA-F]+>")
_PLAIN = (str, int, float, bool, dict, list, tuple, type(None))
_PLAIN_TYPES = frozenset(_PLAIN)  # exactly these: a set lookup before the isinstance
# A timestamp's milliseconds and zone, ".000Z" to ".999Z" (and once more ".999Z", for a
# fraction that rounds up to a whole second): looked up, not formatted, per line.
_MILLIS = (*(f".{ms:03d}Z" for ms in range(1000)), ".999Z")


class JSONFormatter(logging.Formatter):
    """Every message, field and traceback passes through the redactor on its way out."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()
        self._second: tuple[int, str] = (-1, "")  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _RESERVED and not key.startswith("_")
        }
        exc = self.formatException(record.exc_info) if record.exc_info else None
        return self.line(
            record.created, record.levelname, record.name, record.getMessage(), fields, exc
        )

    def line(
        self,
        created: float,
        level: str,
        logger: str,
        message: str,
        fields: dict[str, Any],
        exc: str | None = None,
        texts: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """One JSON log line: the record's own keys, then each field (opaque object reprs
        left out), then the traceback; redacted field by field unless the line is clean.
        `texts`: the caller vouches that these are every string of `fields`, the other
        values scalars, and no name a secret field's (only the texts are checked);
        `extra`: more fields, checked as usual."""
        ts, level = self._timestamp(created), level.lower()
        redact = self.redactor
        if texts is None:
            clean = redact.plain(message, fields)  # strings and scalars: none opaque
        else:
            strings = [message, *texts]
            clean = (not extra or redact.flat_strings(extra, strings)) and redact.clean(strings)
        if exc is None and clean:
            line = {"ts": ts, "level": level, "logger": logger, "msg": message, **fields}
            if extra:
                line.update(extra)
            text = orjson.dumps(line).decode()
        else:
            fields = {**fields, **extra} if extra else fields
            kept = {k: v for k, v in fields.items() if type(v) in _PLAIN_TYPES or not _opaque(v)}
            entry = {"ts": ts, "level": level, "logger": logger, "msg": redact.text(message)}
            entry.update((key, redact.value(value, key)) for key, value in kept.items())
            if exc is not None:
                entry["exc"] = redact.text(exc)
            text = orjson.dumps(entry, default=str).decode()
        return _OBJECT_REPR.sub(r"<\1>", text) if " object at 0x" in text else text

    def _timestamp(self, created: float) -> str:
        second = int(created)
        cached, text = self._second
        if cached != second:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return text + _MILLIS[int((created - second) * 1000)]


def _opaque(value: object) -> bool:
    return not isinstance(value, _PLAIN) and _OBJECT_REPR.fullmatch(str(value)) is not None


class AccessLog:
    """The access log's one line per request, without a LogRecord where logging allows.

    `logger.info(..., extra=...)` cost 7.6% of the production shape's CPU: the caller
    lookup, a LogRecord of 20-odd attributes, the handler chain, then the JSON formatter
    walking the record's dict. When every handler the line would reach is a plain
    `StreamHandler` with a `JSONFormatter` (how `gateway serve` sets logging up) and no
    logger or handler on the way filters, the line is formatted by that same formatter
    (`JSONFormatter.line`: the same keys, the same redaction) and written to the stream
    under the handler's lock, with the other lines of the same event-loop turn (one write
    for them all). Any other set-up (pytest's caplog, a handler of one's own) gets a real
    record through `logging`, as before.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        # Lines of this loop turn, per handler: written together at the turn's end (one
        # write system call for the requests a turn completes, not one per request).
        self._pending: dict[logging.StreamHandler, list[str]] = {}  # type: ignore[type-arg]

    def info(
        self,
        message: str,
        fields: dict[str, Any],
        texts: Sequence[str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """`texts` and `extra` as `JSONFormatter.line` takes them."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        handlers = _plain_json_handlers(logger, logging.INFO)
        if handlers is None:
            logger.info(message, extra={**fields, **extra} if extra else fields)
            return
        created = time.time()
        for handler in handlers:
            formatter: JSONFormatter = handler.formatter  # type: ignore[assignment]
            line = formatter.line(created, "INFO", logger.name, message, fields, None, texts, extra)
            self._write(handler, line + handler.terminator)

    def _write(self, handler: logging.StreamHandler, text: str) -> None:  # type: ignore[type-arg]
        pending = self._pending.get(handler)
        if pending is not None:
            pending.append(text)
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop: at once
            _emit(handler, text)
            return
        self._pending[handler] = [text]
        loop.call_soon(self._flush, handler)

    def _flush(self, handler: logging.StreamHandler) -> None:  # type: ignore[type-arg]
        _emit(handler, "".join(self._pending.pop(handler, ())))


def _emit(handler: logging.StreamHandler, text: str) -> None:  # type: ignore[type-arg]
    """As StreamHandler.emit writes a formatted line: under its lock, flushed; a failure
    is reported the logging way, never raised."""
    with handler.lock or contextlib.nullcontext():
        try:
            handler.stream.write(text)
            handler.flush()
        except Exception:
            handler.handleError(logging.makeLogRecord({"msg": text}))


def _plain_json_handlers(logger: logging.Logger, level: int) -> list[logging.StreamHandler] | None:  # type: ignore[type-arg]
    """The handlers a record from `logger` at `level` would reach, if each is a plain
    JSON stream handler and nothing on the way filters; else None."""
    found: list[logging.StreamHandler] = []  # type: ignore[type-arg]
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if (
                type(handler) is not logging.StreamHandler
                or not isinstance(handler.formatter, JSONFormatter)
                or handler.filters
            ):
                return None
            if level >= handler.level:
                found.append(handler)
        current = current.parent if current.propagate else None
    return found  # none: logging's last resort takes warnings only, an info line goes nowhere


def update_log_settings(config: GatewayConfig) -> None:
    """Apply a (re)loaded config: its level, and its secrets to every JSON formatter."""
    root = logging.getLogger()
    root.setLevel(config.logging.level.upper())
    secrets = list(config_secrets(config))
    for handler in root.handlers:
        if isinstance(handler.formatter, JSONFormatter):
            handler.formatter.redactor.set_secrets(secrets)


def configure_logging(level: str, secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JSONFormatter(Redactor(secrets)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn.access",):
        logging.getLogger(name).disabled = True  # the gateway writes its own access log
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
