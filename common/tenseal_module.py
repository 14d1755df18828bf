"""TenSEAL, imported only where encrypted aggregation is used (the optional extra ``he``)."""

from __future__ import annotations

from typing import Any

from common.errors import MissingExtraError


def tenseal() -> Any:
    """The ``tenseal`` module, or a one-line error saying how to install it."""
    try:
        import tenseal as module
    except ImportError:
        raise MissingExtraError(
            "encrypted aggregation needs tenseal: pip install 'fedlife[he]'"
        ) from None
    return module
