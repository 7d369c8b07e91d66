"""JSON logs through the standard logging module: one object per line."""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Iterable
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


class JSONFormatter(logging.Formatter):
    """Every message, field and traceback passes through the redactor on its way out."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        redact = self.redactor
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact.text(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key in _RESERVED or key.startswith("_") or _opaque(value):
                continue
            entry[key] = redact.value(value, key)
        if record.exc_info:
            entry["exc"] = redact.text(self.formatException(record.exc_info))
        return _OBJECT_REPR.sub(r"<\1>", orjson.dumps(entry, default=str).decode())


def _opaque(value: object) -> bool:
    return not isinstance(value, _PLAIN) and _OBJECT_REPR.fullmatch(str(value)) is not None


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
