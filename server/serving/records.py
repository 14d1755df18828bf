"""Raw records (a site's column names and raw values) to the model's encoded features.

Encoding goes through :class:`common.features.FeatureSpec`, the contract the sites
train with, so a served record is scaled exactly as a site's row is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from common.config import missing_indicator_name
from common.features import ONE_HOT, FeatureSpec

DEFAULT_MISSING = ("", "?", "NA", "NaN", "nan")


@dataclass(frozen=True)
class RecordError:
    """Why one record cannot be encoded.

    Parameters
    ----------
    record : int
        Position of the record in the request (0-based).
    field : str
        The raw column at fault.
    reason : str
        One-line explanation.
    """

    record: int
    field: str
    reason: str


def raw_columns(spec: FeatureSpec) -> tuple[list[str], dict[str, list[str]]]:
    """The raw numeric columns and, per categorical column, its known categories."""
    numeric: list[str] = []
    categories: dict[str, list[str]] = {}
    for name in spec.features:
        if ONE_HOT in name:
            column, value = name.split(ONE_HOT, 1)
            categories.setdefault(column, []).append(value)
        elif name not in numeric:
            numeric.append(name)
    return numeric, categories


def missing_indicators(spec: FeatureSpec) -> dict[str, str]:
    """Missing-indicator features (``chol_missing``) -> the raw column they mark.

    A site's cleaning adds them (``missing_indicator`` in its schema); a record
    need not carry them, they are derived from the raw value as the site does.
    """
    numeric, categories = raw_columns(spec)
    sources = [*numeric, *categories]
    return {missing_indicator_name(c): c for c in sources if missing_indicator_name(c) in numeric}


def check_records(
    spec: FeatureSpec, records: list[dict], *, missing: tuple[str, ...] = DEFAULT_MISSING
) -> tuple[list[dict], list[RecordError]]:
    """Normalise raw records and list the ones the contract cannot encode.

    Parameters
    ----------
    spec : FeatureSpec
        The model's feature contract.
    records : list[dict]
        Raw column name to raw value (strings allowed).
    missing : tuple[str, ...]
        Strings that mean a missing value (encoded like a site's missing value).

    Returns the cleaned records (numbers as floats, missing as None; only the
    valid ones) and the errors of the others.
    """
    numeric, categories = raw_columns(spec)
    indicators = missing_indicators(spec)
    clean: list[dict] = []
    errors: list[RecordError] = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            errors.append(RecordError(i, "", "a record must be an object"))
            continue
        row: dict = {}
        error = None
        for column in [*numeric, *categories]:
            if column in indicators and column not in record:
                continue  # derived below, as the site's cleaning derives it
            if column not in record:
                error = RecordError(i, column, "required column is missing")
                break
            value = record[column]
            if (
                value is None
                or (isinstance(value, float) and value != value)  # NaN, e.g. from pandas
                or (isinstance(value, str) and value.strip() in missing)
            ):
                row[column] = None
            elif column in categories:
                text = _category_text(value)
                if text not in categories[column]:
                    error = RecordError(i, column, f"unknown category {value!r}")
                    break
                row[column] = text
            else:
                try:
                    row[column] = float(value)
                except (TypeError, ValueError):
                    error = RecordError(i, column, f"not a number: {value!r}")
                    break
        if error is None:
            for indicator, source in indicators.items():
                if indicator not in row:
                    row[indicator] = 1.0 if row[source] is None else 0.0
            clean.append(row)
        else:
            errors.append(error)
    return clean, errors


def encode_records(spec: FeatureSpec, records: list[dict]) -> np.ndarray:
    """Encoded features (float32, n x num_features) of records from :func:`check_records`."""
    if not records:
        return np.zeros((0, spec.num_features), dtype=np.float32)
    return records_frame(spec, records).select(spec.scaled_features()).to_numpy().astype(np.float32)


def records_frame(spec: FeatureSpec, records: list[dict]) -> pl.DataFrame:
    """Checked records as a typed frame of the raw columns."""
    numeric, categories = raw_columns(spec)
    # Column by column: several times faster than polars' row orientation.
    return pl.DataFrame(
        [pl.Series(c, [r[c] for r in records], dtype=pl.Float64) for c in numeric]
        + [pl.Series(c, [r[c] for r in records], dtype=pl.String) for c in categories]
    )


def _category_text(value: object) -> str:
    """A category as the contract names it ('1', not '1.0')."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()
