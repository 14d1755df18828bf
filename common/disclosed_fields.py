"""Every value a site sends the coordinator, and what protects it.

Derived from the wire contracts (:mod:`common.wire.messages`), the single source of
each field's class (:class:`~common.wire.privacy.Privacy`);
``tests/privacy/test_disclosed_fields.py`` builds every reply from a real site and
fails on any field the contracts do not declare.
"""

from __future__ import annotations

from common.wire.privacy import Privacy
from common.wire.table import ANY, FIELDS, protection

Protection = Privacy

__all__ = ["ANY", "FIELDS", "Protection", "protection"]
