"""Value constraints the wire models share: sizes, NaN and infinity, JSON text."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

from pydantic import AfterValidator, Field

MAX_NAME = 200
# A feature spec, statistics or an assessment as JSON text: far above any real site's.
MAX_JSON = 2_000_000
MAX_FEATURES = 100_000


def not_nan(value: float) -> float:
    if math.isnan(value):
        raise ValueError("must be a number, got NaN")
    return value


def not_infinite(value: float) -> float:
    if math.isinf(value):
        raise ValueError("must be finite or NaN, got infinity")
    return value


# NaN is how a suppressed or undefined value travels; infinity is never a value.
NaNOrFinite = Annotated[float, Field(allow_inf_nan=True), AfterValidator(not_infinite)]
Epsilon = Annotated[float, Field(allow_inf_nan=True, ge=0), AfterValidator(not_nan)]


def parse_json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise ValueError(f"{what} is not valid JSON") from None
