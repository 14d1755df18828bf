"""``fedlife-site init``: guess a site's schema from a sample file and write site.toml.

:func:`infer_schema` reads a sample (CSV, Parquet or JSON lines) and guesses, per
column, its type, the missing-value markers it really contains, a suggested range or
the allowed values, and its role. :func:`render_site_toml` turns that guess into a
commented ``site.toml`` that :func:`common.config.load_site_config` accepts. The
guess is a starting point: the operator reviews ranges and roles before preparing.

Values are typed the way the pipeline will type them: every value is read as text
(Parquet and JSON columns are cast to text, as ``client.pipeline.ingest`` does) and parsed
with the same rules, so a type guessed here parses there.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from client.pipeline.schema_inference import infer_schema
from client.privacy.randomness import site_secret
from common.config import (
    CleaningSection,
    PrivacySection,
    QualitySection,
    SchemaSection,
    SiteSection,
    TrainingSection,
    load_site_config,
)
from common.data_classes import ALLOWED, implied_class
from common.errors import ConfigError
from common.terminal import FittedTable
from common.toml_text import toml_key, toml_value

_SITE_KEYS = {
    "name": "this site's name in the federation (one word, e.g. a hospital code)",
    "raw": "raw data: a file, a glob or a folder of CSV / Parquet / JSON-lines files; only read",
    "store": "folder for the versioned Delta tables, privacy ledger and audit log",
}
_SCHEMA_KEYS = {
    "missing": "text that means 'no value' in every column (list of strings)",
    "header": "true if the CSV's first row names the columns; false for headerless CSV",
    "delimiter": 'CSV field separator, one character: "," ";" "\\t" "|"',
    "decimal": 'decimal separator of every number column: "." | "," (12,29); a column\'s '
    "own decimal overrides it",
}
_SECTION_KEYS: dict[str, tuple[type[BaseModel], dict[str, str]]] = {
    "cleaning": (
        CleaningSection,
        {
            "dedupe": 'drop duplicate rows: true | false | "id" (keep the latest row per id)',
            "impute": 'missing features: "center" (the federation\'s, at training) | "constant" | '
            '"drop" (the row); privacy off only: "median" | "mean" | "mode" | "interpolate"',
            "impute_value": 'the fill value when impute = "constant" (a number)',
            "outliers": 'values outside [min, max]: "clip" | "reject" (row to quarantine) | '
            '"none"; privacy off only: "winsorize"',
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
            "release_moments": "answer a federation's request for DP feature moments (centers)",
            "moments_budget_share": "share of the budget left that release may cost, 0 < s < 1",
            "moments_noise_multiplier": "a fixed noise for that release instead of the share",
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


def render_site_toml(
    name: str, raw: str, schema: dict[str, Any] | None = None, *, site: dict[str, Any] | None = None
) -> str:
    """A commented ``site.toml`` for ``schema`` (from :func:`infer_schema`; None = template).

    ``site`` : a ``[site]`` section to keep as it is (a provisioned stub's); ``name`` and
    ``raw`` then only fill what it lacks.
    """
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
    site = {"name": name, "raw": raw, "store": "store", **(site or {})}
    out += [_line(k, site[k], c) for k, c in _SITE_KEYS.items() if k in SiteSection.model_fields]
    out += [
        _line(k, v, "kept from the existing [site]") for k, v in site.items() if k not in _SITE_KEYS
    ]

    out += ["", "[schema]"]
    settings = {
        "missing": list(schema.get("missing", [])),
        "header": bool(schema.get("header", True)),
        "delimiter": schema.get("delimiter", ","),
        "decimal": schema.get("decimal", "."),
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
        "# class: what kind of data the column holds (fedlife-site classify shows it with",
        "#   where its values may go); it follows the role: change the role if it is wrong.",
        "# min / max: the column's PUBLIC range (a documented or physiological range). Values",
        "#   outside are outliers and features are scaled by it. The numbers suggested below",
        "#   are the sample's spread without its outliers: replace them with public bounds,",
        "#   as the range is shared with the federation and a range measured on your rows",
        "#   leaks them.",
        "# values: allowed values; a row with another value goes to quarantine.",
        "# missing: extra markers meaning 'no value' in this column only (e.g. \"0\" for a",
        "#   measurement where 0 means 'not measured').",
    ]
    for column, spec in schema["columns"].items():
        out += ["", *_column_lines(column, spec, set(settings["missing"]))]

    for section, (model, comments) in _SECTION_KEYS.items():
        out += ["", f"[{section}]"]
        defaults = model()
        guessed = (schema.get(section) or {}) if not template else {}
        for key, field in model.model_fields.items():
            comment = comments.get(key) or field.description or "see common/config.py"
            value = guessed.get(key, getattr(defaults, key))
            unset = f"# {key} = ...  # {comment}"  # TOML has no None: left unset
            out.append(unset if value is None else _line(key, value, comment))
    return "\n".join(out) + "\n"


def _column_lines(column: str, spec: dict[str, Any], shared_missing: set[str]) -> list[str]:
    kind, role = spec.get("type", "float"), spec.get("role", "feature")
    lines = [f"[schema.columns.{toml_key(column)}]"]
    if spec.get("note"):
        lines.insert(0, f"# {column}: {spec['note']}")
    lines.append(_line("type", kind, _TYPES))
    lines.append(_line("role", role, _ROLES))
    lines.append(_line("class", implied_class(role, public=bool(spec.get("public"))).value,
                       _class_comment(role)))  # fmt: skip
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
    if kind in ("int", "float") and spec.get("decimal") == ",":
        lines.append(_line("decimal", ",", "values like '12,29' use a decimal comma"))
    extra = [m for m in spec.get("missing", []) if m not in shared_missing]
    if extra:
        lines.append(_line("missing", extra, "markers meaning 'no value' in this column"))
    if kind in ("int", "float") and role == "feature":
        lines.append(_line("scale", spec.get("scale", "linear"), 'feature scaling: "linear" | '
                           '"log" (positive, right-skewed)'))  # fmt: skip
    return lines


def _class_comment(role: str) -> str:
    """The classes a column with ``role`` may be declared with (``common.data_classes``)."""
    if role == "feature":
        return "data class: feature | public (with public = true: exact statistics may leave)"
    if len(ALLOWED[role]) == 1:
        return f"data class of role {role!r}; wrong? change the role"
    return "data class: " + " | ".join(c.value for c in ALLOWED[role])


def _line(key: str, value: Any, comment: str) -> str:
    return f"{key} = {toml_value(value)}  # {comment}"


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
    *,
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
    stub = None
    if target.exists() and not force:
        stub = _provisioned_stub(target) if source is not None else None
        if stub is None:
            raise ConfigError(f"{target} already exists: edit it, or pass --force to overwrite it")
    if name is not None and not name.strip():
        raise ConfigError("--name must not be empty")
    if stub is not None and name is not None and name.strip() != stub.get("name"):
        raise ConfigError(
            f"{target}: the provisioned site is named {stub.get('name')!r}, not {name.strip()!r}"
        )
    name = (name or directory.resolve().name or "site").strip()
    schema, raw = None, "raw"
    if source is not None:
        schema = infer_schema(Path(source), header=header, delimiter=delimiter, names=names)
        raw = _raw_setting(Path(source), directory)
    elif names is not None:
        raise ConfigError("--columns needs --from FILE")
    text = render_site_toml(name, raw, schema, site=stub)
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
    # The site's DP secret, drawn now from the OS: the coordinator never learns it.
    site_secret(load_site_config(target).store_dir)
    return target, schema


def _provisioned_stub(target: Path) -> dict[str, Any] | None:
    """The ``[site]`` of a site.toml that has nothing else (``fedlife-coord provision``'s
    stub): init fills its schema and keeps it. None for any other file."""
    try:
        data = tomllib.loads(target.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    site = data.get("site")
    if set(data) != {"site"} or not isinstance(site, dict) or not site.get("name"):
        return None
    return site


def _raw_setting(source: Path, directory: Path) -> str:
    """``source`` relative to the site folder when it lies inside it, else absolute."""
    source, base = source.resolve(), directory.resolve()
    if source.is_relative_to(base):
        return source.relative_to(base).as_posix()
    return source.as_posix()


def inferred_table(schema: dict[str, Any]) -> FittedTable:
    """What :func:`infer_schema` guessed, one row per column (see ``print_fitted``)."""
    layout = (
        f"header {'yes' if schema['header'] else 'no'}, delimiter {schema['delimiter']!r}, "
        if schema["format"] == "csv"
        else ""
    )
    table = FittedTable(
        f"{schema['source']}: {schema['format']}, {layout}{schema['rows']} rows",
        ("column", "type", "role", "range (confirm public)", "values", "missing", "note"),
    )
    for column, spec in schema["columns"].items():
        low, high = spec.get("min"), spec.get("max")
        shown = f"{low:g} .. {high:g}" if low is not None and high is not None else ""
        listed_kinds = spec["type"] == "category" or spec["role"] == "label"
        values = (spec.get("values") or []) if listed_kinds else []
        listed = ", ".join(values[:8]) + (", ..." if len(values) > 8 else "")
        markers = ", ".join(repr(m) for m in spec.get("missing", []))
        missing = f"{spec['nulls']} ({markers})" if markers else str(spec.get("nulls", 0))
        table.rows.append(
            (column, spec["type"], spec["role"], shown, listed, missing, spec.get("note", ""))
        )
    return table
