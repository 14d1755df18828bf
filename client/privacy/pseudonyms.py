"""Keyed pseudonyms of subject ids: what the store holds in place of every id.

A column with role ``id`` is stored as the HMAC-SHA256 of each value (as text, outer
blanks stripped) under the site's secret key (``<store>/audit/hmac.key``), in hex:
the same value an erasure request records for the subject. The mapping is one to
one, so dedupe by id, interpolation per id and row ids work on pseudonyms exactly as
on ids; whoever lacks the key (a stolen disk without the key file, a backup, a log)
cannot tell whose rows they are, and the operator finds a subject again by
pseudonymizing the id (``fedlife-site lookup``, ``erase``, ``label import``).

A row id (``client.pipeline.clean``) built from an id becomes ``<pseudonym>`` or
``<pseudonym>#<n>``; one built from a file position (``<file>:<line>``) names no one
and stays as it is.

A new key is 64 hex digits (256 random bits), and the HMAC's key is those 64 bytes
of text: polars-hash computes HMAC-SHA256 natively only under a key that is text.
A store made by an earlier version holds 32 raw bytes; its ids are hashed in Python,
to the same function of the key file's bytes, so its pseudonyms and erasure requests
stay valid.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import TypeVar

import polars as pl
import polars_hash  # noqa: F401 - registers the `chash` namespace used below
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.hmac import HMAC

from common.audit import keyed_digest, load_or_create_key
from common.config import ColumnType, Role, SchemaSection

KEY_FILE = Path("audit") / "hmac.key"
# A row id's repeat suffix: the id's n-th row (n >= 2).
_REPEAT = re.compile(r"^(.*)(#\d+)$")
# Below this share of distinct values a batch hashes each distinct value once.
_DISTINCT_SHARE = 0.5
_BLOCK = 1 << 16  # values hashed per block
F = TypeVar("F", pl.DataFrame, pl.LazyFrame)
_NUMBER = {ColumnType.INT: pl.Int64, ColumnType.FLOAT: pl.Float64}


def site_key(store_dir: Path) -> bytes:
    """The site's secret key for pseudonyms (created, owner-only, on first use)."""
    new_key = secrets.token_hex(32).encode("ascii")
    return load_or_create_key(Path(store_dir) / KEY_FILE, content=new_key)


def _text_key(key: bytes) -> str | None:
    """``key`` as the text whose UTF-8 bytes it is, or None (a raw-bytes key)."""
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return None


def pseudonym(key: bytes, value: object) -> str:
    """The pseudonym of one id as typed or stored (surrounding blanks ignored)."""
    return keyed_digest(key, str(value).strip())


def pseudonyms(values: pl.Series, key: bytes) -> pl.Series:
    """``values`` (any type; nulls stay null) replaced by their pseudonyms.

    Under a text key polars-hash computes them natively; under an older raw-bytes key
    Python computes one HMAC per value, or per distinct value where values repeat
    (visits). The bytes come from polars and go back as a binary column, hex-encoded
    there.
    """
    if _text_key(key) is not None:
        return values.to_frame().select(pseudonymized(values.name, key)).to_series()
    text = values.cast(pl.String).str.strip_chars()
    if text.null_count() == text.len():
        return pl.Series(values.name, [None] * text.len(), dtype=pl.String)
    # Counted on the values as given: an int id's distinct values cost nothing to count.
    if values.n_unique() > _DISTINCT_SHARE * text.len():
        return _hashed(text, key).alias(values.name)
    distinct = text.drop_nulls().unique()
    hashed = _hashed(distinct, key)
    return text.replace_strict(distinct, hashed, default=None).alias(values.name)


def _hashed(text: pl.Series, key: bytes) -> pl.Series:
    """Each value's HMAC-SHA256 in hex, a block of rows at a time (bounded Python
    objects): the same digest as ``hmac.digest`` (``keyed_digest``), from a copy of one
    keyed HMAC (``cryptography``) per value, which spares setting the key up each time
    and a Python call (1M ids: 1.5 -> 0.56 s of CPU, docs/benchmarks.md)."""
    keyed, blocks = HMAC(key, hashes.SHA256()), []
    for start in range(0, text.len(), _BLOCK):
        raw = text.slice(start, _BLOCK).cast(pl.Binary).to_list()
        hashed: list[bytes | None] = []
        append, copy = hashed.append, keyed.copy
        for value in raw:
            if value is None:
                append(None)
                continue
            mac = copy()
            mac.update(value)
            append(mac.finalize())
        blocks.append(pl.Series(hashed, dtype=pl.Binary).bin.encode("hex"))
    return pl.concat(blocks) if blocks else pl.Series(dtype=pl.String)


def pseudonymized(column: str, key: bytes) -> pl.Expr:
    """An expression: ``column``'s values as pseudonyms (runs in the streaming engine)."""
    text_key = _text_key(key)
    if text_key is not None:
        text = pl.col(column).cast(pl.String).str.strip_chars()
        return text.chash.hmac_sha256(key=text_key).alias(column)  # type: ignore[attr-defined]
    return (
        pl.col(column)
        .map_batches(lambda s: pseudonyms(s, key), return_dtype=pl.String, is_elementwise=True)
        .alias(column)
    )


def row_id_pseudonym(key: bytes, row_id: str, *, positions: frozenset[str] = frozenset()) -> str:
    """The stored form of a row id as the operator knows it (``<id>`` or ``<id>#<n>``).

    Parameters
    ----------
    key : the site's key.
    row_id : the clear row id.
    positions : row ids known to be file positions (kept as they are).
    """
    if row_id in positions:
        return row_id
    match = _REPEAT.match(row_id)
    if match:
        return pseudonym(key, match.group(1)) + match.group(2)
    return pseudonym(key, row_id)


def id_column(schema: SchemaSection) -> str | None:
    """The schema's id column (stored as pseudonyms), if any."""
    return schema.first_with(Role.ID)


def personal_columns(schema: SchemaSection) -> list[str]:
    """Columns with role ``pii``: validated, never stored."""
    return [n for n, s in schema.columns.items() if s.role is Role.PII]


def pseudonymize_frame(frame: F, schema: SchemaSection, key: bytes) -> F:
    """``frame`` with its id column (where present) as pseudonyms and its ``pii``
    columns blanked (null): what the pipeline works on after validation.

    A number id read as text (the raw table, the quarantine) is pseudonymized as its
    typed value is (``017`` as ``17``), so one subject has one pseudonym everywhere.
    ``pii`` columns stay (as nulls) so every step sees the schema's columns; they are
    dropped before a table is written (``without_personal``).
    """
    column = id_column(schema)
    types = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    personal = [c for c in personal_columns(schema) if c in types]
    if personal:
        frame = frame.with_columns(pl.lit(None, dtype=types[c]).alias(c) for c in personal)
    if column is None or column not in types:
        return frame
    number = _NUMBER.get(schema.columns[column].type)
    if types[column] == pl.String and number is not None:
        text = pl.col(column).str.strip_chars()
        typed = text.cast(number, strict=False).cast(pl.String)
        frame = frame.with_columns(pl.coalesce(typed, text).alias(column))
    return frame.with_columns(pseudonymized(column, key))


def without_personal(frame: F, schema: SchemaSection) -> F:
    """``frame`` without its ``pii`` columns: what a store table may hold."""
    personal = personal_columns(schema)
    return frame.drop(personal, strict=False) if personal else frame
