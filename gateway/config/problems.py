"""Schema errors as plain problem lines: `key.path: message`, with "did you mean" for a
misspelt key or choice.

pydantic's own messages are kept where they read well ("Input should be greater than 0");
its "Value error, " prefix on our validators' messages is dropped, and an unknown key is
compared with the keys its section accepts.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

QUOTED = re.compile(r"'([^']*)'")


def describe_errors(errors: Iterable[ErrorDetails], root: type[BaseModel]) -> list[str]:
    return [describe_error(error, root) for error in errors]


def describe_error(error: ErrorDetails, root: type[BaseModel]) -> str:
    loc = error["loc"]
    kind = error["type"]
    message = error["msg"]
    if kind == "extra_forbidden":
        message = "unknown key" + _suggestion(str(loc[-1]), _keys_at(root, loc[:-1]))
    elif kind == "value_error":
        message = str(error.get("ctx", {}).get("error", message.removeprefix("Value error, ")))
    elif kind in ("literal_error", "enum"):
        expected = QUOTED.findall(str(error.get("ctx", {}).get("expected", "")))
        given = error.get("input")
        if isinstance(given, str):
            message += _suggestion(given, expected)
    return f"{key_path(loc) or '<root>'}: {message}"


def key_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path = f"{path}[{part}]"
        else:
            path = f"{path}.{part}" if path else str(part)
    return path


def _suggestion(given: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _keys_at(root: type[BaseModel], loc: Sequence[int | str]) -> list[str]:
    """The keys the section at `loc` accepts (empty when it is not a schema model)."""
    node: Any = root
    for part in loc:
        node = _step(node, part)
        if node is None:
            return []
    model = _model_in(node)
    return list(model.model_fields) if model is not None else []


def _step(node: Any, part: int | str) -> Any:
    model = _model_in(node)
    if model is not None:
        field = model.model_fields.get(str(part))
        return field.annotation if field is not None else None
    origin = get_origin(node)
    args = [a for a in get_args(node) if a is not type(None)]
    if origin is dict and len(args) == 2:
        return args[1]
    if origin is list and args:
        return args[0]
    return None


def _model_in(node: Any) -> type[BaseModel] | None:
    """The model class `node` is, or the one model of an Optional/Union around it."""
    if isinstance(node, type) and issubclass(node, BaseModel):
        return node
    if get_origin(node) in (Union, types.UnionType):
        models = [m for a in get_args(node) if (m := _model_in(a)) is not None]
        return models[0] if len(models) == 1 else None
    return None
