"""The coordinator's memory of each site's audit-log head, across runs.

A site alone cannot notice that its privacy ledger *and* its audit log were removed
together, or rolled back together to an older copy: the two chains watch each other,
and both went back. Every reply of a site carries its audit head (``seq:hash``) and
its store's keyed name (``store-id``); ``site-audit-heads.json``, beside the run
directories (like ``server.central_dp_ledger``), keeps the latest per site::

    {"st-mary": {"store_id": "3f0c...", "seq": 41, "hash": "9ab1..."}}

A reply whose head is behind the one remembered (a lower seq, or the same seq with
another hash) excludes its site with the reason, in this run and every later one
(the refusal is kept with the head: a site appending past the old seq does not
clear it), until the coordinator's operator, having had the store restored,
removes the site's entry from the file. A store with a new ``store-id`` (recreated,
with a new key) is a new store: it is remembered from then on, with an info line in
the log (not a warning: every simulation makes its sites afresh). Older sites that
send no head are not checked.
"""

from __future__ import annotations

import fcntl
import json
import logging
from pathlib import Path

from common.atomic_files import write_atomically
from common.errors import LedgerError

HEADS_NAME = "site-audit-heads.json"
logger = logging.getLogger("fedlife.site_heads")


class SiteHeads:
    """The audit heads of the sites that answered runs whose folders share ``directory``.

    Parameters
    ----------
    directory : folder beside the run directories (the file is created on first use).
    """

    def __init__(self, directory: str | Path) -> None:
        self.path = Path(directory) / HEADS_NAME

    def check(self, site: str, store_id: str | None, audit_head: str | None) -> str:
        """Why ``site`` is refused ("" if not); a head that moved forward is remembered."""
        if store_id is None or audit_head is None:
            return ""
        seq_text, head_hash = audit_head.split(":", 1)
        seq = int(seq_text)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.with_name(HEADS_NAME + ".lock"), "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # read, compare and record as one step
                heads = self.read()
                known = heads.get(site)
                if known is not None and known["store_id"] == store_id:
                    if known.get("refused"):
                        return str(known["refused"])
                    behind = seq < known["seq"] or (
                        seq == known["seq"] and head_hash != known["hash"]
                    )
                    if behind:
                        known["refused"] = (
                            f"audit log went back: the site's audit log ended at entry {seq}, "
                            f"the coordinator had seen entry {known['seq']} (logs removed or "
                            f"rolled back); restore the site's store, then remove its entry "
                            f"from {self.path}"
                        )
                        self._write(heads)
                        return str(known["refused"])
                    if seq == known["seq"]:
                        return ""
                elif known is not None:
                    logger.info(
                        "site %s answers from a new store (store-id %s, was %s): its "
                        "audit log starts again",
                        site,
                        store_id,
                        known["store_id"],
                    )
                heads[site] = {"store_id": store_id, "seq": seq, "hash": head_hash}
                self._write(heads)
        except OSError as error:
            raise LedgerError(f"{self.path}: cannot record site heads ({error.strerror})") from None
        return ""

    def _write(self, heads: dict[str, dict]) -> None:
        write_atomically(self.path, json.dumps(heads, indent=1, sort_keys=True))

    def read(self) -> dict[str, dict]:
        """Site -> its remembered store-id, seq and hash ({} before the first run)."""
        if not self.path.exists():
            return {}
        try:
            heads = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise LedgerError(f"{self.path}: unreadable ({error})") from None
        if not isinstance(heads, dict):
            raise LedgerError(f"{self.path}: not a JSON object of sites")
        return heads
