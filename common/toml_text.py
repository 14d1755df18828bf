"""TOML text for the config files fedlife writes (Python's tomllib only reads).

One writer for every file, so a column named ``od280/od315_of_diluted_wines`` is a
quoted key wherever it appears.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

from common.errors import ConfigError


def toml_key(name: str) -> str:
    """``name`` as a TOML key: bare when it can be, quoted otherwise (``"od280/od315"``)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_value(name)


def toml_value(value: Any) -> str:
    """A TOML literal for the config's value types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"no TOML for {value}")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ConfigError(f"no TOML for {type(value).__name__}")


def _toml_string(text: str) -> str:
    out = io.StringIO()
    out.write('"')
    for char in text:
        if char in '"\\':
            out.write("\\" + char)
        elif char == "\t":
            out.write("\\t")
        elif char == "\n":
            out.write("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.write(f"\\u{ord(char):04x}")
        else:
            out.write(char)
    out.write('"')
    return out.getvalue()
