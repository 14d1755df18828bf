"""A file inside an installed package, found without importing the package.

Some packages run seconds of imports in their ``__init__`` (scikit-learn, Opacus) when
all a caller wants is one file they ship: a bundled dataset, a self-contained module.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_file(package: str, *parts: str) -> Path | None:
    """``package``'s file at ``parts`` below its folder; None if either is not installed."""
    spec = importlib.util.find_spec(package)  # a top-level package is found, not run
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0], *parts)
    return path if path.is_file() else None
