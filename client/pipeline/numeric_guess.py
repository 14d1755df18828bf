"""What init guesses about a numeric column: sentinel codes, a robust range, hidden zeros.

Suggestions for the operator, like the rest of ``fedlife-site init``: a range is the
sample's spread without its outliers, and only public once the operator says so.
"""

from __future__ import annotations

from typing import Any

import polars as pl

from client.pipeline.roles import join_notes

# Numeric sentinels: markers only in a column whose other values make them impossible.
NEGATIVE_SENTINELS = ("-9", "-9.0", "-99", "-99.0", "-999", "-999.0", "-9999", "-9999.0")
NEGATIVE_SENTINELS += ("-99999", "-99999.0", "-999999", "-999999.0")
POSITIVE_SENTINELS = ("999", "999.0", "9999", "9999.0", "99999", "99999.0", "999999", "999999.0")
# -1 is a 'no value' code only in a column of values > 0, or >= 0 with -1 beyond its
# robust range.
MINUS_ONE = ("-1", "-1.0")
# The suggested range: the values within this many scaled MADs (1.4826 MAD estimates a
# normal sd) of the median; the values outside are listed, not taken into the range.
ROBUST_MADS = 5.0
MAD_TO_SD = 1.4826
OUTSIDE_SHOWN = 5
# A 0 below the other (positive) values by more than this share of their spread is suspect.
ZERO_GAP = 0.15


def decimal_note(commas: pl.Series) -> str:
    """What init tells about a column's decimal commas (``commas``: those values)."""
    note = (
        f"{commas.len()} values with a decimal comma (e.g. '{commas[0]}'): decimal = \",\" "
        "reads them (else prepare quarantines their rows)"
    )
    if commas.str.contains(r",\d{3}$").all():
        note += "; check: ',' may separate thousands here"
    return note


def robust_fence(finite: pl.Series) -> tuple[float, float] | None:
    """``median -+ ROBUST_MADS`` scaled MADs of ``finite``; None where the MAD is 0."""
    if finite.len() == 0:
        return None
    median = float(finite.median())
    spread = MAD_TO_SD * float((finite - median).abs().median())
    if spread <= 0:
        return None
    return median - ROBUST_MADS * spread, median + ROBUST_MADS * spread


def sentinels(values: pl.Series, numbers: pl.Series) -> list[str]:
    """Sentinel codes like -9, -99999 or 9999 that the column's other values rule out."""
    found = []
    negative = values.is_in(NEGATIVE_SENTINELS)
    others = numbers.filter(~negative)
    if negative.any() and others.len() and others.min() >= 0:
        found += sorted(values.filter(negative).unique().to_list())
    minus_one = values.is_in(MINUS_ONE)
    others = numbers.filter(~negative & ~minus_one)
    if minus_one.any() and others.len() and others.min() >= 0:
        # Next to 0s (a count, a score) -1 may be real unless the spread rules it out.
        fence = robust_fence(others)
        if others.min() > 0 or (fence[0] if fence else others.min()) > -1:
            found += sorted(values.filter(minus_one).unique().to_list())
    positive = values.is_in(POSITIVE_SENTINELS)
    others = numbers.filter(~positive & ~negative)
    if positive.any() and others.len():
        smallest = numbers.filter(positive).min()
        if others.max() * 5 < smallest:
            found += sorted(values.filter(positive).unique().to_list())
    return found


def sentinel_note(sentinels: list[str]) -> str:
    """The note on codes like -99999 that init proposes as missing markers."""
    codes = ", ".join(repr(s) for s in sentinels)
    what = "looks like a 'no value' code" if len(sentinels) == 1 else "look like 'no value' codes"
    return (
        f"{codes} {what}, far from the other values: proposed as missing; remove from "
        "missing what is a real value"
    )


def suggest_range(spec: dict[str, Any], finite: pl.Series) -> None:
    """The sample's range without its outliers (beyond the robust fence), which are listed."""
    if finite.len() == 0:
        return
    fence = robust_fence(finite)
    if fence is not None:
        inside = finite.is_between(*fence)
        outside = finite.filter(~inside)
        if outside.len():
            counts = outside.value_counts(sort=True, name="n").rows()
            shown = ", ".join(f"{v:g}" + (f" ({n}x)" if n > 1 else "") for v, n in counts)
            shown = ", ".join(shown.split(", ")[:OUTSIDE_SHOWN]) + (
                ", ..." if len(counts) > OUTSIDE_SHOWN else ""
            )
            spec["outside"] = sorted(float(v) for v in outside.unique().to_list())
            spec["note"] = join_notes(
                spec["note"],
                f"left outside the range (far from the median): {shown}; typos, units or "
                "codes? prepare clips them to the range",
            )
            finite = finite.filter(inside)
    low, high = float(finite.min()), float(finite.max())
    zeros = int((finite == 0).sum())
    if low < high:
        spec["min"], spec["max"] = low, high
    elif low == 0:
        spec["note"] = join_notes(
            spec["note"], "only 0 seen: if 0 means 'not measured' add \"0\" to missing, "
            "else declare its public range"
        )  # fmt: skip
        return
    else:
        spec["note"] = join_notes(
            spec["note"], f"one value ({low:g}) seen: declare its public range"
        )
    if _zero_looks_hidden(finite):
        spec["note"] = join_notes(
            spec["note"], f"0 seen {zeros}x, far below the rest: if it means 'not measured', "
            'add "0" to missing'
        )  # fmt: skip


def _zero_looks_hidden(finite: pl.Series) -> bool:
    """True when 0 occurs but the other values all lie far above it (0 = not measured?)."""
    nonzero = finite.filter(finite != 0)
    if nonzero.len() == finite.len() or nonzero.len() == 0:
        return False
    low, high = float(nonzero.min()), float(nonzero.max())
    return nonzero.n_unique() >= 5 and low > 0 and low > ZERO_GAP * (high - low)
