"""Erasure requests and what they purged, kept as keyed hashes only.

A request is stored as the subject's pseudonym, the HMAC of the id under the site's
secret key (``client.privacy.pseudonyms``): the store never holds the id itself, and
its id columns hold the same pseudonyms, so the subject's rows are found by
comparing them (no hashing of the tables). What
an erasure purged is recorded per table as version numbers only
(``<store>/retention/purged.json``): that, and never whose rows, is what the site
tells its coordinator, so models trained on those versions can be retrained.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl

from client.pipeline.pipeline import PipelineResult
from client.privacy.pseudonyms import pseudonym, site_key
from client.retention.backup_registry import note_erasures
from client.store import ROW_ID
from common.atomic_files import write_atomically
from common.config import Role, SiteConfig
from common.errors import StoreError

PENDING, DONE = "pending", "done"


__all__ = ["ErasureRequests", "PurgedVersions", "SubjectMatcher", "site_key", "subject_digest"]


def subject_digest(key: bytes, subject_id: object) -> str:
    """The keyed hash of one subject id, as written: its pseudonym in the store."""
    return pseudonym(key, subject_id)


@dataclass
class ErasureRequest:
    """One subject's erasure request.

    Parameters
    ----------
    request : keyed hash of the subject id (never the id).
    recorded : when the request was recorded (UTC, ISO 8601).
    status : 'pending' until carried out, then 'done'.
    rows : rows deleted when carried out (over every table and the archive).
    done : when it was carried out.
    """

    request: str
    recorded: str
    status: str = PENDING
    rows: int = 0
    done: str = ""


class ErasureRequests:
    """The site's erasure requests, ``<store>/retention/erasure-requests.json``.

    Parameters
    ----------
    store_dir : the site's store directory.
    """

    def __init__(self, store_dir: Path) -> None:
        self.path = Path(store_dir) / "retention" / "erasure-requests.json"

    def all(self) -> list[ErasureRequest]:
        if not self.path.exists():
            return []
        try:
            return [ErasureRequest(**r) for r in json.loads(self.path.read_text())]
        except (OSError, ValueError, TypeError) as error:
            raise StoreError(f"{self.path}: erasure requests are unreadable ({error})") from None

    def pending(self) -> list[ErasureRequest]:
        return [r for r in self.all() if r.status == PENDING]

    def add(self, digests: list[str]) -> list[str]:
        """Record requests for ``digests``; return those that were not already pending."""
        requests = self.all()
        pending = {r.request for r in requests if r.status == PENDING}
        now = _now()
        new = [d for d in dict.fromkeys(digests) if d not in pending]
        self._save([*requests, *(ErasureRequest(d, now) for d in new)])
        note_erasures(self.path.parent.parent, new)  # beside the backups: outlives them
        return new

    def complete(self, rows: dict[str, int]) -> None:
        """Mark the pending requests in ``rows`` (digest -> rows deleted) done."""
        now = _now()
        requests = self.all()
        for request in requests:
            if request.status == PENDING and request.request in rows:
                request.status, request.rows, request.done = DONE, rows[request.request], now
        self._save(requests)

    def _save(self, requests: list[ErasureRequest]) -> None:
        _write_json(self.path, [asdict(r) for r in requests])


class PurgedVersions:
    """Table versions that no longer exist, and why ('erasure' or 'retention').

    Parameters
    ----------
    store_dir : the site's store directory.
    """

    def __init__(self, store_dir: Path) -> None:
        self.path = Path(store_dir) / "retention" / "purged.json"

    def all(self) -> dict[str, dict[str, str]]:
        """table -> {version: reason}."""
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError) as error:
            raise StoreError(f"{self.path}: purged versions are unreadable ({error})") from None

    def erased(self, table: str = "clean") -> list[int]:
        """Versions of ``table`` that held rows later erased (what models must unlearn)."""
        reasons = self.all().get(table, {})
        return sorted(int(v) for v, why in reasons.items() if why == "erasure")

    def add(self, table: str, versions: list[int], reason: str) -> None:
        purged = self.all()
        kept = purged.setdefault(table, {})
        for version in versions:
            if kept.get(str(version)) != "erasure":  # erasure is the reason that matters
                kept[str(version)] = reason
        purged[table] = dict(sorted(kept.items(), key=lambda item: int(item[0])))
        _write_json(self.path, purged)


class SubjectMatcher:
    """Erasure requests (keyed hashes) matched against a site's id column (pseudonyms).

    Parameters
    ----------
    config : the site's config (its id column and store).
    digests : keyed hashes of the requested subject ids.
    """

    def __init__(self, config: SiteConfig, digests: set[str]) -> None:
        self.column = config.schema.first_with(Role.ID)
        self.digests = digests
        self.rows: dict[str, int] = dict.fromkeys(digests, 0)
        self._wanted = pl.Series(sorted(digests), dtype=pl.String)

    def column_in(self, columns: list[str]) -> str | None:
        """The column of ``columns`` that names a row's subject, if any.

        Labels and queues keep only the row id, which is the id column's value
        wherever the schema has one.
        """
        if self.column is None:
            return None
        return next((c for c in (self.column, ROW_ID) if c in columns), None)

    def mask(self, frame: pl.DataFrame, *, count: bool = False) -> pl.Series | None:
        """True on rows of requested subjects; None if ``frame`` has no id column.

        ``count`` adds the rows found to :attr:`rows` (digest -> rows).
        """
        column = self.column_in(frame.columns)
        if not self.digests or column is None:
            return None
        ids = frame.get_column(column).cast(pl.Utf8, strict=False)
        if column == ROW_ID:  # the subject's pseudonym, with '#n' on its repeated rows
            ids = ids.str.replace(r"#\d+$", "")
        mask = ids.is_in(self._wanted.implode()).fill_null(False)
        if count:
            for value, n in ids.filter(mask).value_counts().iter_rows():
                self.rows[value] += n
        return mask


def without_erased(config: SiteConfig, result: PipelineResult) -> PipelineResult:
    """``result`` without the rows of any subject ever requested erased.

    The raw files belong to the site and are never modified, so a later ``prepare``
    would read an erased subject again; this keeps the subject out of every table.
    """
    digests = {r.request for r in ErasureRequests(config.store_dir).all()}
    if not digests or config.schema.first_with(Role.ID) is None:
        return result
    subjects = SubjectMatcher(config, digests)

    def keep(frame: pl.DataFrame) -> pl.DataFrame:
        mask = subjects.mask(frame)
        return frame if mask is None else frame.filter(~mask)

    return result.keep_rows(keep)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_json(path: Path, data: object) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(data, indent=1))
    except OSError as error:
        raise StoreError(f"{path}: cannot write ({error.strerror})") from None
