"""The site's audit log: ``<store>/audit/audit.jsonl`` and its chain head beside it.

Every site action appends one entry (see :class:`common.audit.AuditLog`): what was
done and counts, never row values or subject ids.
"""

from __future__ import annotations

from common.audit import AuditLog
from common.config import SiteConfig


def site_audit(config: SiteConfig) -> AuditLog:
    """The audit log of the site ``config`` describes."""
    return AuditLog(config.store_dir / "audit", f"site {config.site.name}")
