"""The privacy class every field a site sends declares, and the helper that declares it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import Field


class Privacy(StrEnum):
    """What protects a value that leaves a site.

    * ``public``: declared, not measured (the schema's features, policy, names,
      versions, the epsilon the ledger composed);
    * ``dp``: a differentially private release, charged to the site's ledger;
    * ``aggregate``: computed from rows but only over groups of at least
      ``min_group_size`` rows (``common.disclosure``);
    * ``coarsened``: computed from rows and rounded to a step of ``min_group_size``
      rows (``common.wire.coarse``), on held-out rows while privacy is on;
    * ``suppressed``: not released while the site's privacy is on (sent as NaN);
    * ``open``: computed from rows with none of the above: a known gap, listed with why.
    """

    PUBLIC = "public"
    DP = "dp"
    AGGREGATE = "aggregate"
    COARSENED = "coarsened"
    SUPPRESSED = "suppressed"
    OPEN = "open"


def wire_field(privacy: Privacy, protection: str, *, alias: str, **constraints: Any) -> Any:
    """A model field that leaves a site.

    Parameters
    ----------
    privacy : its class.
    protection : one line: what it is and what protects it (the threat-model table).
    alias : its key in the Flower record.
    constraints : pydantic ``Field`` constraints (``ge``, ``max_length``, ``default``...).
    """
    return Field(
        alias=alias,
        description=protection,
        json_schema_extra={"privacy": privacy.value},
        **constraints,
    )
