"""The base of fedlife's config models: unknown keys refused, values frozen."""

from __future__ import annotations

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
            expected = "unknown key"
        raise ConfigError(f"{source}: {key}: {expected}") from None
