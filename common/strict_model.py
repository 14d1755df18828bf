"""The base of fedlife's config models: unknown keys refused, values frozen."""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from common.errors import ConfigError


class StrictModel(BaseModel):
    """A pydantic model that refuses unknown keys and cannot be changed once made."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def validate_as(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    """``model`` validated from ``data``; else a one-line :class:`ConfigError` naming
    ``source``, the key and what was expected."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        expected = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            expected = "unknown key" + _did_you_mean(model, first["loc"])
        raise ConfigError(f"{source}: {key}: {expected}") from None


def _did_you_mean(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """``; did you mean 'dedupe'?`` for the known key nearest the unknown one at ``loc``."""
    known = _keys_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), known, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _keys_at(model: type[BaseModel], path: tuple[Any, ...]) -> list[str]:
    """The keys a config model accepts at ``path`` (through nested models, dicts, lists)."""
    current: Any = model
    for part in path:
        current = _model_in(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = next((f for n, f in current.model_fields.items() if part in (n, f.alias)), None)
            current = None if field is None else field.annotation
        else:  # a dict's value or a list's item: the last type argument
            args = typing.get_args(current)
            current = args[-1] if args else None
    current = _model_in(current)
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [f.alias or n for n, f in current.model_fields.items() if not f.exclude]


def _model_in(annotation: Any) -> Any:
    """The model inside ``X | None``; anything else as it is."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        models = [a for a in typing.get_args(annotation) if a is not type(None)]
        return models[0] if len(models) == 1 else annotation
    return annotation
