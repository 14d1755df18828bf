"""A prepare that stopped between its commits (killed, power cut): which versions it left.

One prepare commits several tables one after the other (raw where kept, quarantine,
unlabeled, then clean), each commit carrying the same prepare id (``prepare_run``
in its lineage). A prepare finished when clean carries its id; a table whose latest
commit carries another id and came after clean's is what an unfinished prepare
left. ``retain`` and ``erase`` keep the id of the version they rewrite, and a vacuum
commit carries its version's lineage, so neither looks unfinished.
"""

from __future__ import annotations

from dataclasses import dataclass

from deltalake import DeltaTable

from client.pipeline.incremental import RUN
from client.site_audit import site_audit
from client.store import CLEAN, QUARANTINE, RAW, UNLABELED, SiteStore, TableVersion
from common.config import SiteConfig

# The tables a prepare writes before clean, in its order.
_BEFORE_CLEAN = (RAW, QUARANTINE, UNLABELED)


@dataclass(frozen=True)
class UnfinishedPrepare:
    """The versions a prepare committed before it stopped, short of a clean version.

    Parameters
    ----------
    run : the stopped prepare's id (``prepare_run``).
    versions : each table it committed, its version and rows.
    clean_version : the latest clean version (from an earlier prepare), None if none.
    """

    run: str
    versions: dict[str, tuple[int, int]]
    clean_version: int | None

    def describe(self) -> str:
        """One line naming the prepare and what it left."""
        left = ", ".join(
            f"{table} version {version} ({rows:,} rows)"
            for table, (version, rows) in self.versions.items()
        )
        clean = (
            "no clean version yet"
            if self.clean_version is None
            else f"clean version {self.clean_version} is from an earlier prepare"
        )
        return f"unfinished prepare {self.run[:8]} committed {left} but no clean version; {clean}"

    def lead(self, notice: str) -> str:
        """``notice`` of the prepare that supersedes this one, led by what this one left."""
        superseded = f"{self.describe()}: this prepare supersedes it"
        return f"{superseded}; {notice}" if notice else superseded

    def audit(self, config: SiteConfig) -> None:
        """Record in the site's audit log what this prepare left (its successor is running)."""
        site_audit(config).append(
            "prepare-unfinished",
            prepare_run=self.run,
            versions={table: version for table, (version, _) in self.versions.items()},
            clean_version=self.clean_version,
        )


def _commit_ms(store: SiteStore, table: str) -> int:
    return int(DeltaTable(store.table_path(table)).history(1)[0].get("timestamp", 0))


def unfinished_prepare(store: SiteStore) -> UnfinishedPrepare | None:
    """The prepare that stopped after committing some tables but not clean, if any."""
    clean = store.latest(CLEAN)
    clean_run = None if clean is None else clean.lineage.get(RUN)
    clean_ms = None if clean is None else _commit_ms(store, CLEAN)
    left: dict[str, TableVersion] = {}
    for table in _BEFORE_CLEAN:
        latest = store.latest(table)
        run = None if latest is None else latest.lineage.get(RUN)
        if latest is None or not run or run == clean_run:
            continue
        if clean_ms is not None and _commit_ms(store, table) <= clean_ms:
            continue  # older than clean: written before this table was last rewritten
        left[table] = latest
    if not left:
        return None
    # Two stopped prepares may have left one table each: name the last one to stop.
    newest = max(left, key=lambda table: _commit_ms(store, table))
    versions = {t: (v.version, int(v.lineage.get("rows", 0))) for t, v in left.items()}
    return UnfinishedPrepare(
        left[newest].lineage[RUN], versions, None if clean is None else clean.version
    )
