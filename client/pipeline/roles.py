"""Guess each column's role from its name and values: pii, id, timestamp, the label.

A guess for the operator to review, like the rest of ``fedlife-site init``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_LABEL_NAMES = {"target", "label", "outcome", "diagnosis", "class", "num", "y"}
_LABEL_TOKENS = {"target", "label", "outcome", "diagnosis", "class"}
_PII_TOKENS = {
    "name", "firstname", "lastname", "surname", "fullname", "email", "mail", "phone",
    "telephone", "mobile", "address", "street", "ssn", "dob", "birthdate", "birthday",
}  # fmt: skip
TEXT_FEATURE = (
    "free text as a feature: the model does not use it; role 'ignore' (or 'pii'), "
    "or type 'category' for codes"
)
_PII_NAMES = {"first_name", "last_name", "full_name", "date_of_birth", "birth_date", "e_mail"}


def join_notes(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _tokens(name: str) -> list[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [t for t in re.split(r"[^a-z0-9]+", spaced.lower()) if t]


def _is_pii(name: str) -> bool:
    tokens = _tokens(name)
    joined = "_".join(tokens)
    return bool(set(tokens) & _PII_TOKENS) or joined in _PII_NAMES or "birth" in joined


def _id_name(name: str) -> str | None:
    """'strict' for id / *_id / mrn / uuid, 'loose' for patient*, else None."""
    tokens = _tokens(name)
    if not tokens:
        return None
    if tokens[-1] in {"id", "mrn", "uuid", "guid"} or "mrn" in tokens:
        return "strict"
    if name.lower().replace(" ", "") in {"patientid", "recordid", "subjectid"}:
        return "strict"
    if tokens[0].startswith("patient"):
        return "loose"
    return None


def guess_roles(
    columns: dict[str, dict[str, Any]], *, distinct_rows: Callable[[], int]
) -> dict[str, Any]:
    """Set each column's role: pii, id, timestamp, one label, features.

    Parameters
    ----------
    columns : the guessed columns (``unique``, ``distinct``, ``nulls`` per column).
    distinct_rows : counts the sample's distinct rows (called only for an id-named
        column whose values repeat); an id column with as many distinct values repeats
        only in whole duplicated rows.

    Returns
    -------
    dict
        Cleaning settings the roles call for (``{"dedupe": "id"}`` when an id repeats
        across distinct rows), else empty.
    """
    cleaning: dict[str, Any] = {}
    unique_id = next(
        (n for n, s in columns.items() if _id_name(n) and s["unique"] and not _is_pii(n)), None
    )
    for name, spec in columns.items():
        id_kind = _id_name(name)
        if _is_pii(name):
            spec["role"], spec["note"] = "pii", join_notes(spec["note"], "looks like personal data")
        elif id_kind and spec["unique"]:
            spec["role"] = "id"
        elif id_kind == "strict" and unique_id is not None:
            spec["role"] = "ignore"  # one id per schema: the unique one identifies rows
            spec["note"] = join_notes(
                spec["note"], f"named like an id but values repeat; {unique_id!r} is the id"
            )
        elif id_kind == "strict" and spec["nulls"] == 0 and spec["distinct"] == distinct_rows():
            spec["role"] = "id"
            spec["note"] = join_notes(
                spec["note"], "values repeat only in whole duplicated rows: dedupe drops them"
            )
        elif id_kind == "strict":
            # Repeats across distinct rows: visits of one subject. Still the subject's id
            # (erasure and per-person privacy need it); the row kept per id is the latest.
            spec["role"] = "id"
            cleaning["dedupe"] = "id"
            spec["note"] = join_notes(
                spec["note"],
                'values repeat across distinct rows (visits?): dedupe = "id" keeps each '
                "id's latest row; dedupe = true keeps every visit",
            )
        elif spec["type"] == "datetime":
            spec["role"] = "timestamp"
        if spec["role"] in ("pii", "id", "ignore"):
            spec["min"] = spec["max"] = spec["values"] = None

    candidates = [n for n, s in columns.items() if s["role"] == "feature"]
    usable = [n for n in candidates if columns[n]["type"] not in ("text", "datetime")]
    by_name = [n for n in usable if n.lower() in _LABEL_NAMES or set(_tokens(n)) & _LABEL_TOKENS]
    if by_name:
        label = by_name[0]
    elif usable or candidates:
        label = (usable or candidates)[-1]
        columns[label]["note"] = join_notes(columns[label]["note"], "label guessed: last column")
    else:
        label = list(columns)[-1]
        columns[label]["note"] = join_notes(columns[label]["note"], "no plausible label: pick one")
    columns[label]["role"] = "label"
    for spec in columns.values():
        if spec["role"] == "feature" and spec["type"] == "text":
            spec["note"] = join_notes(spec["note"], TEXT_FEATURE)
    return cleaning
