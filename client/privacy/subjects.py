"""The unit of privacy: a subject, when the schema names one, else a row.

A patient with ten visits is ten rows; DP-SGD's guarantee per row would protect the
patient only by group privacy over ten, which nothing accounts for. So a site whose
schema has an ``id`` column trains each round, and releases its moments, on one row
per subject, drawn with the site's secret randomness. Removing a subject then removes
exactly one row from what each release saw, and every other subject's row is drawn
as before: the row-level epsilon of the ledger is the subject-level epsilon.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from common.config import Role, SiteConfig


def subject_column(config: SiteConfig) -> str | None:
    """The column that names a row's subject (role ``id``), if the schema has one."""
    return config.schema.first_with(Role.ID)


def unit_of_privacy(config: SiteConfig) -> str:
    """What one epsilon protects, in words for the operator."""
    column = subject_column(config)
    if column is None:
        return "row (the schema names no id column)"
    return f"subject (id column '{column}', one row per subject in each release)"


def one_row_per_subject(subjects: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of one row per subject, each drawn uniformly among that subject's rows."""
    shuffled = rng.permutation(len(subjects))
    _, first = np.unique(subjects[shuffled], return_index=True)
    return np.sort(shuffled[first])


def subject_ids(frame: pl.DataFrame, column: str) -> np.ndarray:
    """Each row's subject; a row without an id stands for a subject of its own."""
    ids = frame.get_column(column).cast(pl.String).fill_null("").to_numpy()
    own = np.char.add("row:", np.arange(len(ids)).astype(str))
    return np.where(ids == "", own, ids)


def one_frame_row_per_subject(
    frame: pl.DataFrame, column: str, rng: np.random.Generator
) -> pl.DataFrame:
    """``frame`` with one row per subject of ``column`` (see :func:`subject_ids`)."""
    return frame[one_row_per_subject(subject_ids(frame, column), rng).tolist()]
