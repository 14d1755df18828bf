"""``fedlife-site lookup``: a subject's rows in every table, found by its pseudonym.

The store holds ids only as pseudonyms (``client.privacy.pseudonyms``): the id the
operator types is pseudonymized with the site's key and matched against each
table's id column (or, where a table keeps only row ids, against those), so a
subject's rows can be shown, checked before an erasure, or given to the subject on
request, without the store ever holding the id.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from client.privacy.pseudonyms import id_column, pseudonym, site_key
from client.retention import history as delta_history
from client.retention.retain import site_archive
from client.store import ROW_ID, SiteStore
from common.config import SiteConfig
from common.errors import ConfigError, StoreError, SubjectNotFoundError


@dataclass(frozen=True)
class SubjectRows:
    """One table's (or archive file's) rows of a subject at its latest version.

    Parameters
    ----------
    source : the table's name, or ``archive/<table>/<file>``.
    version : the table's version (None for an archive file).
    rows : the subject's rows.
    """

    source: str
    version: int | None
    rows: pl.DataFrame


def subject_rows(config: SiteConfig, subject_id: str) -> tuple[str, list[SubjectRows]]:
    """The pseudonym of ``subject_id`` and its rows in every table and archive file.

    Raises ``SubjectNotFoundError`` where no table holds a row of the subject.
    """
    column = id_column(config.schema)
    if column is None:
        raise ConfigError("lookup needs a schema column with role 'id'")
    if not subject_id.strip():
        raise ConfigError("the subject id is empty")
    store = SiteStore(config.store_dir)
    tables = store.root / "tables"
    if not tables.is_dir() or not delta_history.delta_tables(tables):
        raise StoreError(
            f"{config.store_dir}: no tables in the store yet (run fedlife-site prepare)"
        )
    wanted = pseudonym(site_key(config.store_dir), subject_id)
    found = []
    for path in delta_history.delta_tables(tables):
        latest = store.latest(path.name)
        assert latest is not None
        rows = _of_subject(store.read(path.name, latest.version), column, wanted)
        if rows is not None and rows.height:
            found.append(SubjectRows(path.name, latest.version, rows))
    archive = site_archive(config)
    for file in archive.files():
        rows = _of_subject(archive.read(file), column, wanted)
        if rows is not None and rows.height:
            found.append(SubjectRows(f"archive/{file.relative_to(archive.root)}", None, rows))
    if not found:
        raise SubjectNotFoundError(
            f"{subject_id}: no row of this subject in the store at {config.store_dir}"
        )
    return wanted, found


def _of_subject(frame: pl.DataFrame, column: str, wanted: str) -> pl.DataFrame | None:
    """``frame``'s rows of the subject ``wanted`` (a pseudonym); None: no id column."""
    if column in frame.columns:
        return frame.filter(pl.col(column) == wanted)
    if ROW_ID in frame.columns:  # labels and queues keep only row ids: '<pseudonym>#n'
        return frame.filter(pl.col(ROW_ID).str.replace(r"#\d+$", "") == wanted)
    return None
