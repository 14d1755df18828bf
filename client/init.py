"""``fedlife-site init``: guess a site's schema from a sample file and write site.toml.

:func:`infer_schema` reads a sample (CSV, Parquet or JSON lines) and guesses, per
column, its type, the missing-value markers it really contains, a suggested range or
the allowed values, and its role. :func:`render_site_toml` turns that guess into a
commented ``site.toml`` that :func:`common.config.load_site_config` accepts. The
guess is a starting point: the operator reviews ranges and roles before preparing.

Values are typed the way the pipeline will type them: every value is read as text
(Parquet and JSON columns are cast to text, as ``client.ingest`` does) and parsed
with the same rules, so a type guessed here parses there.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel
from rich.markup import escape
from rich.table import Table

from common.config import (
    CleaningSection,
    PrivacySection,
    QualitySection,
    SchemaSection,
    SiteSection,
    TrainingSection,
    load_site_config,
)
from common.errors import ConfigError, DataError

SAMPLE_ROWS = 100_000
"""Rows read for the guess; a larger file is guessed from its first rows."""

DELIMITERS = (",", ";", "\t", "|")  # sniffed in this order; " " only as a last resort
CATEGORY_MAX_VALUES = 20
PARQUET_SUFFIXES = {".parquet", ".pq"}
JSON_SUFFIXES = {".jsonl", ".ndjson", ".json"}
CSV_SUFFIXES = {".csv", ".tsv", ".txt", ".data"}

# Markers that mean "no value" wherever they appear (compared after stripping blanks).
TEXT_MARKERS = ("", "?", "NA", "N/A", "n/a", "na", "NaN", "nan", "NULL", "null", "None")
TEXT_MARKERS += ("none", "-", "--", ".", "#N/A", "missing")
# Numeric sentinels: markers only in a column whose other values make them impossible.
NEGATIVE_SENTINELS = ("-9", "-9.0", "-99", "-99.0", "-999", "-999.0", "-9999", "-9999.0")
POSITIVE_SENTINELS = ("999", "999.0", "9999", "9999.0", "99999", "99999.0")
# At most this many distinct unknown words in an otherwise numeric column are markers.
UNKNOWN_MARKERS_MAX = 3
NUMERIC_SHARE = 0.9
# A 0 below the other (positive) values by more than this share of their spread is suspect.
ZERO_GAP = 0.15

_TRUE_FALSE = {"true", "false", "yes", "no", "t", "f", "y", "n"}
_LABEL_NAMES = {"target", "label", "outcome", "diagnosis", "class", "num", "y"}
_LABEL_TOKENS = {"target", "label", "outcome", "diagnosis", "class"}
_PII_TOKENS = {
    "name", "firstname", "lastname", "surname", "fullname", "email", "mail", "phone",
    "telephone", "mobile", "address", "street", "ssn", "dob", "birthdate", "birthday",
}  # fmt: skip
_PII_NAMES = {"first_name", "last_name", "full_name", "date_of_birth", "birth_date", "e_mail"}


# ---------------------------------------------------------------------------- inference


def infer_schema(
    sample: Path,
    header: bool | None = None,
    delimiter: str | None = None,
    names: list[str] | None = None,
) -> dict[str, Any]:
    """Guess the schema of ``sample``.

    Parameters
    ----------
    sample : a CSV (any of ``, ; tab |``), Parquet or JSON-lines file, or a folder
        (its first data file is the sample).
    header : whether a CSV's first row names the columns; None = detect (a first
        row with a number in it is data).
    delimiter : a CSV's delimiter; None = sniff it.
    names : column names, in file order; they name a headerless file's columns
        (else ``col_1`` ... ``col_n``) or replace a header's.

    Returns
    -------
    dict
        ``format``, ``header``, ``delimiter``, ``rows`` (rows read), ``missing`` (the
        markers seen in any column) and ``columns``: name -> ``type``, ``role``,
        ``min``/``max`` (numeric), ``values`` (categories, small int labels),
        ``missing`` (markers seen in that column), ``nulls``, ``distinct``, ``note``.
    """
    path = _sample_file(Path(sample))
    kind = _format(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: file is empty")
    if kind == "csv":
        frame, header, delimiter = _read_csv(path, header, delimiter, names)
    else:
        frame = _read_typed_file(path, kind)
        header, delimiter = True, ","
        if names is not None:
            frame = frame.rename(dict(zip(frame.columns, _check_names(names, frame.width, path))))
    if frame.height == 0:
        raise DataError(f"{path}: no rows to learn from")

    columns = {name: _infer_column(frame.get_column(name)) for name in frame.columns}
    _guess_roles(columns)
    seen = {m for spec in columns.values() for m in spec["missing"] if m in TEXT_MARKERS}
    return {
        "source": str(path),
        "format": kind,
        "header": header,
        "delimiter": delimiter,
        "rows": frame.height,
        "missing": [m for m in TEXT_MARKERS if m in seen],
        "columns": columns,
    }


def _sample_file(path: Path) -> Path:
    if path.is_dir():
        known = CSV_SUFFIXES | PARQUET_SUFFIXES | JSON_SUFFIXES
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in known)
        if not files:
            raise DataError(f"{path}: folder holds no CSV, Parquet or JSON-lines file")
        return files[0]
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: not a regular file")
    return path


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in JSON_SUFFIXES:
        return "jsonl"
    return "csv"


def _read_typed_file(path: Path, kind: str) -> pl.DataFrame:
    """A Parquet / JSON-lines file with every column as text, as the pipeline reads it."""
    try:
        if kind == "parquet":
            frame = pl.read_parquet(path, n_rows=SAMPLE_ROWS)
        else:
            frame = pl.read_ndjson(path, n_rows=SAMPLE_ROWS, infer_schema_length=None)
    except (pl.exceptions.PolarsError, OSError, ValueError, UnicodeDecodeError) as error:
        what = "Parquet" if kind == "parquet" else "JSON lines"
        raise DataError(f"{path}: cannot read as {what} ({_first_line(error)})") from None
    return frame.select(_as_text(frame, name) for name in frame.columns)


def _as_text(frame: pl.DataFrame, name: str) -> pl.Expr:
    dtype = frame.schema[name]
    if dtype.is_nested() or dtype == pl.Object:
        return pl.col(name).map_elements(str, return_dtype=pl.String).alias(name)
    return pl.col(name).cast(pl.String).alias(name)


def _read_csv(
    path: Path, header: bool | None, delimiter: str | None, names: list[str] | None
) -> tuple[pl.DataFrame, bool, str]:
    head = _head_text(path)
    lines = [line for line in head.splitlines() if line.strip()]
    if not lines:
        raise DataError(f"{path}: file holds only blank lines")
    if delimiter is None:
        delimiter = _sniff_delimiter(lines)
    elif len(delimiter) != 1:
        raise ConfigError(f"delimiter must be one character, got {delimiter!r}")
    if header is None:
        first = next(csv.reader([lines[0]], delimiter=delimiter))
        header = not any(_looks_numeric(field) for field in first)
    try:
        frame = pl.read_csv(
            path,
            has_header=header,
            separator=delimiter,
            infer_schema=False,
            empty_string_is_null=False,
            n_rows=SAMPLE_ROWS,
        )
    except (pl.exceptions.PolarsError, OSError, UnicodeDecodeError, ValueError) as error:
        raise DataError(f"{path}: cannot read as CSV ({_first_line(error)})") from None
    if names is not None:
        new = _check_names(names, frame.width, path)
    elif not header:
        new = [f"col_{i}" for i in range(1, frame.width + 1)]
    else:
        new = [name.strip() or f"col_{i}" for i, name in enumerate(frame.columns, 1)]
    return frame.rename(dict(zip(frame.columns, new))), header, delimiter


def _head_text(path: Path, size: int = 1 << 16) -> str:
    with path.open("rb") as handle:
        data = handle.read(size)
    if len(data) == size and b"\n" in data:
        data = data[: data.rindex(b"\n")]  # never cut a character or a row in two
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text (CSV files must be UTF-8)") from None


def _sniff_delimiter(lines: list[str]) -> str:
    """The candidate that splits the first lines into the same number (> 1) of fields.

    Candidates are ``, ; tab |``; a single space only when none of them splits.
    """
    best, best_width = ",", 1
    for candidate in DELIMITERS:
        widths = {len(row) for row in csv.reader(lines[:50], delimiter=candidate)}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = candidate, width
    if best_width > 1:
        return best
    widths = {len(line.split(" ")) for line in lines[:50]}
    if len(widths) == 1 and widths.pop() > 1:
        return " "
    # Ragged lines: the candidate seen most often on the first line (the pipeline will say
    # which rows break it), else a one-column file.
    counts = {d: lines[0].count(d) for d in DELIMITERS}
    return max(counts, key=counts.get) if max(counts.values()) else ","


def _looks_numeric(field: str) -> bool:
    try:
        return math.isfinite(float(field.strip()))
    except ValueError:
        return False


def _check_names(names: list[str], width: int, path: Path) -> list[str]:
    names = [n.strip() for n in names]
    if any(not n for n in names):
        raise ConfigError("column names must not be empty")
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"column names repeat: {duplicates}")
    if len(names) != width:
        raise ConfigError(f"{path}: has {width} columns but {len(names)} names were given")
    return names


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _infer_column(raw: pl.Series) -> dict[str, Any]:
    """Type, markers, range or values of one text column."""
    text = raw.str.strip_chars()
    nulls = text.null_count()  # Parquet / JSON nulls: already missing, no marker
    present = text.drop_nulls()
    counts = dict(present.alias("value").value_counts(name="n").iter_rows())
    markers = [m for m in TEXT_MARKERS if m in counts]
    values = present.filter(~present.is_in(markers))

    numbers = values.cast(pl.Float64, strict=False)
    parsed = numbers.is_not_null() & ~values.str.contains(r"^[+-]?0\d")  # '007' is a code
    if values.len() and parsed.sum() < values.len() and parsed.mean() >= NUMERIC_SHARE:
        unknown = values.filter(~parsed).unique().to_list()
        if len(unknown) <= UNKNOWN_MARKERS_MAX:  # e.g. 'unknown', 'n.d.' in a number column
            markers += sorted(unknown)
            values, numbers = values.filter(parsed), numbers.filter(parsed)
            parsed = parsed.filter(parsed)
    numeric = values.len() > 0 and numbers.null_count() == 0 and parsed.all()
    if numeric:
        sentinels = _sentinels(values, numbers)
        markers += sentinels
        keep = ~values.is_in(sentinels)
        values, numbers = values.filter(keep), numbers.filter(keep)

    spec: dict[str, Any] = {
        "type": "float",
        "role": "feature",
        "min": None,
        "max": None,
        "values": None,
        "missing": markers,
        "nulls": nulls + sum(counts.get(m, 0) for m in markers),
        "distinct": values.n_unique(),
        "unique": values.len() == raw.len() and values.n_unique() == values.len(),
        "note": "",
    }
    if values.len() == 0:
        spec["note"] = "no values in the sample: check the type"
        return spec
    if numeric:
        finite = numbers.filter(numbers.is_finite())
        integral = finite.len() == numbers.len() and bool((finite == finite.round()).all())
        spec["type"] = "int" if integral else "float"
        if integral and values.str.contains(r"\.").any():
            spec["note"] = "ints written as floats ('63.0')"
        _suggest_range(spec, finite)
        if integral and spec["distinct"] <= CATEGORY_MAX_VALUES:
            spec["values"] = [str(v) for v in sorted(finite.cast(pl.Int64).unique().to_list())]
        return spec
    lowered = values.str.to_lowercase()
    if lowered.is_in(list(_TRUE_FALSE)).all():
        spec["type"] = "bool"
        return spec
    if _all_datetimes(values):
        spec["type"] = "datetime"
        return spec
    distinct = spec["distinct"]
    if distinct <= CATEGORY_MAX_VALUES and distinct < 0.5 * values.len():
        spec["type"] = "category"
        spec["values"] = sorted(values.unique().to_list())
    else:
        spec["type"] = "text"
    return spec


def _all_datetimes(values: pl.Series) -> bool:
    """True when the pipeline's datetime parsing (format inferred) reads every value."""
    try:
        return values.str.to_datetime(strict=False).null_count() == 0
    except pl.exceptions.PolarsError:  # no format fits the first value
        return False


def _sentinels(values: pl.Series, numbers: pl.Series) -> list[str]:
    """Sentinel codes like -9 or 9999 that the column's other values rule out."""
    found = []
    negative = values.is_in(NEGATIVE_SENTINELS)
    others = numbers.filter(~negative)
    if negative.any() and others.len() and others.min() >= 0:
        found += sorted(values.filter(negative).unique().to_list())
    positive = values.is_in(POSITIVE_SENTINELS)
    others = numbers.filter(~positive & ~negative)
    if positive.any() and others.len():
        smallest = numbers.filter(positive).min()
        if others.max() * 5 < smallest:
            found += sorted(values.filter(positive).unique().to_list())
    return found


def _suggest_range(spec: dict[str, Any], finite: pl.Series) -> None:
    if finite.len() == 0:
        return
    low, high = float(finite.min()), float(finite.max())
    zeros = int((finite == 0).sum())
    if low < high:
        spec["min"], spec["max"] = low, high
    elif low == 0:
        spec["note"] = _join(
            spec["note"], "only 0 seen: if 0 means 'not measured' add \"0\" to missing, "
            "else declare its public range"
        )  # fmt: skip
        return
    else:
        spec["note"] = _join(spec["note"], f"one value ({low:g}) seen: declare its public range")
    if _zero_looks_hidden(finite):
        spec["note"] = _join(
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


def _join(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


# -------------------------------------------------------------------------------- roles


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


def _guess_roles(columns: dict[str, dict[str, Any]]) -> None:
    """Set each column's role: pii, id, timestamp, one label, features."""
    for name, spec in columns.items():
        id_kind = _id_name(name)
        if _is_pii(name):
            spec["role"], spec["note"] = "pii", _join(spec["note"], "looks like personal data")
        elif id_kind and spec["unique"]:
            spec["role"] = "id"
        elif id_kind == "strict":
            spec["role"] = "ignore"
            spec["note"] = _join(
                spec["note"], "named like an id but values repeat: role 'id' if rows are visits"
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
        columns[label]["note"] = _join(columns[label]["note"], "label guessed: last column")
    else:
        label = list(columns)[-1]
        columns[label]["note"] = _join(columns[label]["note"], "no plausible label: pick one")
    columns[label]["role"] = "label"


# ---------------------------------------------------------------------------- rendering

_SITE_KEYS = {
    "name": "this site's name in the federation (one word, e.g. a hospital code)",
    "raw": "raw data: a file, a glob or a folder of CSV / Parquet / JSON-lines files; only read",
    "store": "folder for the versioned Delta tables, privacy ledger and audit log",
}
_SCHEMA_KEYS = {
    "missing": "text that means 'no value' in every column (list of strings)",
    "header": "true if the CSV's first row names the columns; false for headerless CSV",
    "delimiter": 'CSV field separator, one character: "," ";" "\\t" "|"',
}
_SECTION_KEYS: dict[str, tuple[type[BaseModel], dict[str, str]]] = {
    "cleaning": (
        CleaningSection,
        {
            "dedupe": 'drop duplicate rows: true | false | "id" (keep the latest row per id)',
            "impute": 'missing features: "median" | "mean" | "mode" | "constant" | '
            '"interpolate" | "drop" (the row)',
            "impute_value": 'the fill value when impute = "constant" (a number)',
            "outliers": 'values outside [min, max]: "clip" | "winsorize" | "reject" (row to '
            'quarantine) | "none"',
            "winsorize_quantiles": 'quantiles [low, high] for outliers = "winsorize", 0 <= low '
            "< high <= 1",
        },
    ),
    "quality": (
        QualitySection,
        {
            "min_rows": "fewest clean rows to take part in training (integer >= 1)",
            "min_classes": "fewest label classes to take part (integer >= 1)",
            "max_missing_fraction": "most share of a feature that may be missing, 0..1",
            "rules": 'conditions every clean row must meet, polars SQL (e.g. ["age >= 18"])',
            "min_group_size": "fewest rows behind any aggregate statistic that leaves the site",
        },
    ),
    "privacy": (
        PrivacySection,
        {
            "enabled": "train with differential privacy (DP-SGD); false only for tests",
            "epsilon_budget": "total epsilon this site may ever spend (0 < epsilon <= 100)",
            "delta": "DP delta, well below 1 / rows (0 < delta < 1)",
            "accountant": 'privacy accountant: "rdp" | "prv"',
        },
    ),
    "training": (
        TrainingSection,
        {"test_fraction": "share of clean rows held out for local evaluation, 0 <= f < 1"},
    ),
}
_TYPES = "int | float | bool | category | datetime | text"
_ROLES = "feature | label | id | timestamp | sensitive | pii | ignore"

TEMPLATE_SCHEMA: dict[str, Any] = {
    "format": "csv",
    "header": True,
    "delimiter": ",",
    "missing": ["", "NA", "?"],
    "columns": {
        "age": {"type": "float", "role": "feature", "min": 0.0, "max": 120.0, "missing": []},
        "outcome": {"type": "int", "role": "label", "values": ["0", "1"], "missing": []},
    },
}


def render_site_toml(name: str, raw: str, schema: dict[str, Any] | None = None) -> str:
    """A commented ``site.toml`` for ``schema`` (from :func:`infer_schema`; None = template)."""
    template = schema is None
    schema = TEMPLATE_SCHEMA if template else schema
    out = [
        "# fedlife site config. Every key is explained on its line; "
        "fedlife-site prepare -c site.toml uses it.",
    ]
    if template:
        out.append(
            "# A template: list your columns under [schema.columns.<name>] like the two below."
        )
    else:
        rows = schema.get("rows")
        out.append(
            f"# Guessed by fedlife-site init from {schema.get('source', raw)}"
            + (f" ({rows} rows read)." if rows is not None else ".")
        )
        out.append("# Review every type, role, range and list of values before you prepare.")
    out += ["", "[site]"]
    site = {"name": name, "raw": raw, "store": "store"}
    out += [_line(k, site[k], c) for k, c in _SITE_KEYS.items() if k in SiteSection.model_fields]

    out += ["", "[schema]"]
    settings = {
        "missing": list(schema.get("missing", [])),
        "header": bool(schema.get("header", True)),
        "delimiter": schema.get("delimiter", ","),
    }
    not_csv = schema.get("format", "csv") != "csv"
    for key, comment in _SCHEMA_KEYS.items():
        if key in SchemaSection.model_fields:
            if not_csv and key in ("header", "delimiter"):
                comment += " (unused: the raw file is not CSV)"
            out.append(_line(key, settings[key], comment))
    out += [
        "",
        "# One table per column, in file order (a headerless CSV's columns are named by it).",
        f"# type: {_TYPES}",
        f"# role: {_ROLES}; only 'feature' columns feed the model,",
        "#   exactly one column is the 'label'; id and pii columns never leave the site.",
        "# min / max: the column's PUBLIC range (a documented or physiological range). Values",
        "#   outside are outliers and features are scaled by it. The numbers suggested below",
        "#   are the sample's own min and max: replace them with public bounds, since the range",
        "#   is shared with the federation and a range measured on your rows leaks them.",
        "# values: allowed values; a row with another value goes to quarantine.",
        "# missing: extra markers meaning 'no value' in this column only (e.g. \"0\" for a",
        "#   measurement where 0 means 'not measured').",
    ]
    for column, spec in schema["columns"].items():
        out += ["", *_column_lines(column, spec, set(settings["missing"]))]

    for section, (model, comments) in _SECTION_KEYS.items():
        out += ["", f"[{section}]"]
        defaults = model()
        for key, field in model.model_fields.items():
            comment = comments.get(key) or field.description or "see common/config.py"
            out.append(_line(key, getattr(defaults, key), comment))
    return "\n".join(out) + "\n"


def _column_lines(column: str, spec: dict[str, Any], shared_missing: set[str]) -> list[str]:
    kind, role = spec.get("type", "float"), spec.get("role", "feature")
    lines = [f"[schema.columns.{_key(column)}]"]
    if spec.get("note"):
        lines.insert(0, f"# {column}: {spec['note']}")
    lines.append(_line("type", kind, _TYPES))
    lines.append(_line("role", role, _ROLES))
    low, high = spec.get("min"), spec.get("max")
    if kind in ("int", "float") and role in ("feature", "sensitive"):
        if low is not None and high is not None and low < high:
            lines.append(_line("min", float(low), "lowest public value: confirm it is public"))
            lines.append(_line("max", float(high), "highest public value: confirm it is public"))
        elif role == "feature":
            lines.append("# min = ...      # declare the public range: features need one to train")
            lines.append("# max = ...")
    values = spec.get("values")
    if values is not None and (kind == "category" or role == "label"):
        lines.append(_line("values", [str(v) for v in values], "allowed values"))
    extra = [m for m in spec.get("missing", []) if m not in shared_missing]
    if extra:
        lines.append(_line("missing", extra, "markers meaning 'no value' in this column"))
    if kind in ("int", "float") and role == "feature":
        lines.append(_line("scale", spec.get("scale", "linear"), 'feature scaling: "linear" | '
                           '"log" (positive, right-skewed)'))  # fmt: skip
    return lines


def _line(key: str, value: Any, comment: str) -> str:
    return f"{key} = {_toml(value)}  # {comment}"


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml(name)


def _toml(value: Any) -> str:
    """A TOML literal for the config's value types."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"no TOML for {value}")
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {type(value).__name__}")


def _toml_string(text: str) -> str:
    out = io.StringIO()
    out.write('"')
    for char in text:
        if char in '"\\':
            out.write("\\" + char)
        elif char == "\t":
            out.write("\\t")
        elif char == "\n":
            out.write("\\n")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.write(f"\\u{ord(char):04x}")
        else:
            out.write(char)
    out.write('"')
    return out.getvalue()


# --------------------------------------------------------------------------- the command


def split_names(text: str | None) -> list[str] | None:
    """``--columns`` text (``a,b,c`` or ``a b c``) as a list of names."""
    if text is None:
        return None
    names = [n for n in re.split(r"[,\s]+", text) if n]
    if not names:
        raise ConfigError("--columns names no column")
    return names


def init_site(
    directory: Path,
    source: Path | None = None,
    name: str | None = None,
    names: list[str] | None = None,
    header: bool | None = None,
    delimiter: str | None = None,
    force: bool = False,
) -> tuple[Path, dict[str, Any] | None]:
    """Write ``directory/site.toml`` (guessed from ``source`` if given); return it and the guess.

    The file is validated by :func:`load_site_config` before it replaces anything.
    """
    directory = Path(directory)
    target = directory / "site.toml"
    if directory.exists() and not directory.is_dir():
        raise ConfigError(f"{directory}: exists and is not a folder")
    if target.exists() and not force:
        raise ConfigError(f"{target} already exists: edit it, or pass --force to overwrite it")
    if name is not None and not name.strip():
        raise ConfigError("--name must not be empty")
    name = (name or directory.resolve().name or "site").strip()
    schema, raw = None, "raw"
    if source is not None:
        schema = infer_schema(Path(source), header=header, delimiter=delimiter, names=names)
        raw = _raw_setting(Path(source), directory)
    elif names is not None:
        raise ConfigError("--columns needs --from FILE")
    text = render_site_toml(name, raw, schema)
    directory.mkdir(parents=True, exist_ok=True)
    draft = directory / ".site.toml.draft"
    try:
        draft.write_text(text, encoding="utf-8")
        load_site_config(draft)
        draft.replace(target)
    except OSError as error:
        raise ConfigError(f"{target}: cannot write ({error.strerror})") from None
    finally:
        draft.unlink(missing_ok=True)
    return target, schema


def _raw_setting(source: Path, directory: Path) -> str:
    """``source`` relative to the site folder when it lies inside it, else absolute."""
    source, base = source.resolve(), directory.resolve()
    if source.is_relative_to(base):
        return source.relative_to(base).as_posix()
    return source.as_posix()


def inferred_table(schema: dict[str, Any]) -> Table:
    """What :func:`infer_schema` guessed, one row per column."""
    layout = (
        f"header {'yes' if schema['header'] else 'no'}, delimiter {schema['delimiter']!r}, "
        if schema["format"] == "csv"
        else ""
    )
    table = Table(title=f"{schema['source']}: {schema['format']}, {layout}{schema['rows']} rows")
    for heading in ("column", "type", "role", "range (confirm public)", "values", "missing"):
        table.add_column(heading)
    table.add_column("note", overflow="fold")
    for column, spec in schema["columns"].items():
        low, high = spec.get("min"), spec.get("max")
        shown = f"{low:g} .. {high:g}" if low is not None and high is not None else ""
        listed_kinds = spec["type"] == "category" or spec["role"] == "label"
        values = (spec.get("values") or []) if listed_kinds else []
        listed = ", ".join(values[:8]) + (", ..." if len(values) > 8 else "")
        markers = ", ".join(repr(m) for m in spec.get("missing", []))
        missing = f"{spec['nulls']} ({markers})" if markers else str(spec.get("nulls", 0))
        cells = (column, spec["type"], spec["role"], shown, listed, missing, spec.get("note", ""))
        table.add_row(*(escape(cell) for cell in cells))
    return table
