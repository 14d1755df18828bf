"""``fedlife-site init``: schema inference on small files, the rendered site.toml, the CLI."""

from __future__ import annotations

import csv
import json
import tomllib
from pathlib import Path

import polars as pl
import pytest

from client.pipeline.init import (
    infer_schema,
    inferred_table,
    init_site,
    render_site_toml,
    split_names,
)
from client.pipeline.prepare import prepare
from client.store import SiteStore
from common.config import ColumnType, Role, load_site_config
from common.errors import ConfigError, DataError

SECTIONS = ["site", "schema", "cleaning", "quality", "privacy", "training"]
BLOOD = ["A", "AB", "B", "O"]


def clinic_csv(rows: int = 40) -> str:
    """A headed CSV with one column of each kind, '?' and 'NA' markers, one duplicate."""
    lines = ["patient_id,name,age,weight,smoker,blood_type,visit_date,comment,outcome"]
    for i in range(rows):
        age = "?" if i == 3 else "NA" if i == 7 else str(20 + i)
        lines.append(
            f"{1000 + i},Person {i},{age},{50 + i * 1.25},{'yes' if i % 3 else 'no'},"
            f"{BLOOD[i % 4]},2024-01-{1 + i % 28:02d},free text number {i},{i % 2}"
        )
    return "\n".join(lines) + "\n"


def write_site(folder: Path, sample: Path, schema: dict, name: str = "clinic") -> Path:
    """Render ``schema`` into ``folder/site.toml`` with raw pointing at ``sample``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "site.toml"
    path.write_text(render_site_toml(name, str(sample), schema))
    return path


@pytest.fixture
def clinic(tmp_path: Path) -> Path:
    path = tmp_path / "clinic.csv"
    path.write_text(clinic_csv())
    return path


# ------------------------------------------------------------------------------ inference


def test_csv_types_roles_markers_and_ranges(clinic):
    schema = infer_schema(clinic)
    assert (schema["format"], schema["header"], schema["delimiter"]) == ("csv", True, ",")
    assert schema["rows"] == 40
    columns = schema["columns"]
    kinds = {name: (spec["type"], spec["role"]) for name, spec in columns.items()}
    assert kinds == {
        "patient_id": ("int", "id"),
        "name": ("text", "pii"),
        "age": ("int", "feature"),
        "weight": ("float", "feature"),
        "smoker": ("bool", "feature"),
        "blood_type": ("category", "feature"),
        "visit_date": ("datetime", "timestamp"),
        "comment": ("text", "feature"),
        "outcome": ("int", "label"),
    }
    # Only the markers really present, in the column where they are.
    assert schema["missing"] == ["?", "NA"]
    assert columns["age"]["missing"] == ["?", "NA"] and columns["age"]["nulls"] == 2
    assert all(not spec["missing"] for name, spec in columns.items() if name != "age")
    # Suggested ranges are the sample's min / max (the operator confirms them as public).
    assert (columns["age"]["min"], columns["age"]["max"]) == (20.0, 59.0)
    assert (columns["weight"]["min"], columns["weight"]["max"]) == (50.0, 98.75)
    assert columns["blood_type"]["values"] == BLOOD
    assert columns["outcome"]["values"] == ["0", "1"]
    # Identifiers and personal data get no range or values: they never leave the site.
    for name in ("patient_id", "name"):
        assert columns[name]["min"] is None and columns[name]["values"] is None


def test_headerless_semicolon_file_gets_numbered_or_given_names(tmp_path):
    path = tmp_path / "export.txt"
    rows = [f"{i};{i * 0.5:.1f};{'?' if i == 2 else i % 3};{i % 2}" for i in range(1, 31)]
    path.write_text("\n".join(rows) + "\n")

    schema = infer_schema(path)
    assert (schema["header"], schema["delimiter"]) == (False, ";")
    assert list(schema["columns"]) == ["col_1", "col_2", "col_3", "col_4"]
    assert schema["rows"] == 30  # the first row is data, not a header
    assert schema["columns"]["col_4"]["role"] == "label"  # the last column, by default
    assert "last column" in schema["columns"]["col_4"]["note"]
    assert schema["columns"]["col_3"]["missing"] == ["?"]

    named = infer_schema(path, names=["a", "b", "c", "y"])
    assert list(named["columns"]) == ["a", "b", "c", "y"]
    assert named["columns"]["y"]["role"] == "label"

    config = load_site_config(write_site(tmp_path / "site", path, named))
    assert config.schema.header is False and config.schema.delimiter == ";"
    result = prepare(config)
    assert result.report.rows_clean == 30 and result.report.imputed == {"c": 1}


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_sniffed(tmp_path, delimiter):
    path = tmp_path / "data.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["x", "note", "label"])
        # The note holds the other candidates; quoting keeps them inside one field.
        writer.writerows([i, f"a,b;c|d\te {i}", i % 2] for i in range(12))
    schema = infer_schema(path)
    assert schema["delimiter"] == delimiter and schema["header"] is True
    assert list(schema["columns"]) == ["x", "note", "label"]
    assert schema["columns"]["note"]["type"] == "text"


def test_explicit_header_and_delimiter_win(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("1|2|3\n4|5|6\n7|8|9\n")
    schema = infer_schema(path, header=True, delimiter="|")
    assert list(schema["columns"]) == ["1", "2", "3"] and schema["rows"] == 2


def test_parquet_columns_are_typed_as_the_pipeline_reads_them(tmp_path):
    frame = pl.DataFrame(
        {
            "record_id": list(range(30)),
            "dose": [None if i == 5 else i * 0.5 for i in range(30)],
            "flag": [i % 2 == 0 for i in range(30)],
            "ward": ["north", "south", "east"] * 10,
            "target": [i % 2 for i in range(30)],
        }
    )
    path = tmp_path / "data.parquet"
    frame.write_parquet(path)
    schema = infer_schema(path)
    assert schema["format"] == "parquet"
    kinds = {name: (spec["type"], spec["role"]) for name, spec in schema["columns"].items()}
    assert kinds == {
        "record_id": ("int", "id"),
        "dose": ("float", "feature"),
        "flag": ("bool", "feature"),
        "ward": ("category", "feature"),
        "target": ("int", "label"),
    }
    assert schema["columns"]["dose"]["nulls"] == 1 and schema["columns"]["dose"]["missing"] == []
    assert schema["missing"] == []

    config = load_site_config(write_site(tmp_path / "site", path, schema))
    result = prepare(config)
    assert result.report.rows_clean == 30 and result.report.imputed == {"dose": 1}


def test_json_lines_inference(tmp_path):
    path = tmp_path / "visits.jsonl"
    rows = [
        {"mrn": f"M{i:04d}", "email": f"p{i}@example.org", "bmi": 20 + i / 4, "diagnosis": i % 3}
        for i in range(25)
    ]
    rows[4]["bmi"] = "N/A"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    schema = infer_schema(path)
    assert schema["format"] == "jsonl"
    kinds = {name: (spec["type"], spec["role"]) for name, spec in schema["columns"].items()}
    assert kinds == {
        "mrn": ("text", "id"),
        "email": ("text", "pii"),
        "bmi": ("float", "feature"),
        "diagnosis": ("int", "label"),
    }
    assert schema["columns"]["bmi"]["missing"] == ["N/A"]
    config = load_site_config(write_site(tmp_path / "site", path, schema))
    assert config.schema.label == "diagnosis"
    assert config.schema.columns["mrn"].role is Role.ID
    result = prepare(config)
    assert result.report.rows_clean == 25 and result.report.imputed == {"bmi": 1}


def test_sentinels_and_hidden_zeros(tmp_path):
    path = tmp_path / "lab.csv"
    lines = ["pressure,temperature,glucose,count,y"]
    for i in range(30):
        pressure = "-9" if i in (1, 2) else str(100 + i)  # -9: impossible, a marker
        temperature = str(-9 + i)  # -9 is a real temperature here
        glucose = "0" if i == 3 else str(80 + 3 * i)  # 0 far below the rest: suspect
        lines.append(f"{pressure},{temperature},{glucose},{i},{i % 2}")
    path.write_text("\n".join(lines) + "\n")
    columns = infer_schema(path)["columns"]
    assert columns["pressure"]["missing"] == ["-9"]
    assert columns["pressure"]["min"] == 100.0
    assert columns["temperature"]["missing"] == [] and columns["temperature"]["min"] == -9.0
    assert "0 seen 1x" in columns["glucose"]["note"] and columns["glucose"]["missing"] == []
    assert columns["count"]["note"] == ""  # 0 next to 1, 2, 3: an ordinary value


def test_unknown_words_in_a_number_column_are_markers(tmp_path):
    path = tmp_path / "data.csv"
    values = ["n.d." if i % 10 == 0 else str(i) for i in range(1, 41)]
    path.write_text("x,label\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(values)))
    spec = infer_schema(path)["columns"]["x"]
    assert spec["type"] == "int" and spec["missing"] == ["n.d."] and spec["nulls"] == 4


def test_ints_written_as_floats_and_codes_with_leading_zeros(tmp_path):
    path = tmp_path / "data.csv"
    rows = [f"{60 + i}.0,0{i % 5 + 1}00,{i % 2}" for i in range(20)]
    path.write_text("age,zip,class\n" + "\n".join(rows) + "\n")
    columns = infer_schema(path)["columns"]
    assert columns["age"]["type"] == "int" and "as floats" in columns["age"]["note"]
    assert columns["zip"]["type"] == "category"  # '0100' is a code, not the number 100
    assert columns["class"]["role"] == "label"


def test_id_roles_need_unique_values(tmp_path):
    path = tmp_path / "data.csv"
    rows = [f"{i // 2},{i},{40 + i % 7},{i % 2}" for i in range(20)]
    path.write_text("visit_id,patient_number,patient_age,outcome\n" + "\n".join(rows) + "\n")
    roles = {n: s["role"] for n, s in infer_schema(path)["columns"].items()}
    assert roles == {
        "visit_id": "ignore",  # named like an id, values repeat: never a feature
        "patient_number": "id",
        "patient_age": "feature",
        "outcome": "label",
    }


@pytest.mark.parametrize(
    ("name", "content", "error", "needle"),
    [
        ("empty.csv", b"", DataError, "empty"),
        ("blank.csv", b"\n \n\n", DataError, "blank"),
        ("header.csv", b"a,b,c\n", DataError, "no rows"),
        ("latin1.csv", b"name,y\n\xe9l\xe8ve,1\n", DataError, "UTF-8"),
        ("cut.parquet", b"PAR1\x00\x01garbage", DataError, "Parquet"),
        ("bad.jsonl", b'{"a": 1}\n{"a": \n', DataError, "JSON"),
    ],
)
def test_bad_samples_are_data_errors(tmp_path, name, content, error, needle):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(error) as raised:
        infer_schema(path)
    assert name in str(raised.value) and needle in str(raised.value)
    assert "\n" not in str(raised.value)


def test_missing_file_and_wrong_names(tmp_path, clinic):
    with pytest.raises(DataError, match="no such file"):
        infer_schema(tmp_path / "nosuch.csv")
    with pytest.raises(ConfigError, match="has 9 columns but 2 names"):
        infer_schema(clinic, names=["a", "b"])
    with pytest.raises(ConfigError, match="repeat"):
        infer_schema(clinic, names=["a"] * 9)
    assert split_names("a, b  c,d") == ["a", "b", "c", "d"]


def test_a_folder_sample_uses_its_first_data_file(tmp_path):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "notes.md").write_text("not data")
    (tmp_path / "raw" / "part-1.csv").write_text(clinic_csv())
    assert infer_schema(tmp_path / "raw")["source"].endswith("part-1.csv")


# ------------------------------------------------------------------------------ rendering


def test_rendered_toml_is_commented_and_validates(tmp_path, clinic):
    schema = infer_schema(clinic)
    text = render_site_toml("st-mary", "clinic.csv", schema)
    assert [line for line in text.splitlines() if line.startswith("[") and "." not in line] == [
        f"[{section}]" for section in SECTIONS
    ]
    for line in text.splitlines():
        if line and not line.startswith(("#", "[")):
            key, _, rest = line.partition(" = ")
            assert "  # " in rest, f"key {key!r} has no comment"
    assert "confirm it is public" in text and "PUBLIC range" in text

    config = load_site_config(write_site(tmp_path, clinic, schema))
    columns = config.schema.columns
    assert config.site.name == "clinic" and config.schema.missing == ["?", "NA"]
    assert columns["age"].type is ColumnType.INT and (columns["age"].min, columns["age"].max) == (
        20.0,
        59.0,
    )
    assert columns["blood_type"].values == BLOOD
    assert columns["name"].role is Role.PII and columns["patient_id"].role is Role.ID
    assert config.schema.label == "outcome"

    result = prepare(config)
    assert result.report.rows_read == 40 and result.report.rows_rejected == 0
    assert result.report.imputed == {"age": 2}
    assert result.gate_passed, result.gate_reasons


def test_odd_column_names_and_markers_survive_toml(tmp_path):
    path = tmp_path / "data.csv"
    rows = [f"{i},{'-' if i == 1 else i * 2},{i % 2}" for i in range(12)]
    path.write_text("Age (years),dose.mg's\\x,y\n" + "\n".join(rows) + "\n")
    schema = infer_schema(path)
    names = ["Age (years)", "dose.mg's\\x", "y"]
    assert list(schema["columns"]) == names
    text = render_site_toml('quote " and \\ backslash', "data.csv", schema)
    parsed = tomllib.loads(text)
    assert list(parsed["schema"]["columns"]) == names
    assert parsed["site"]["name"] == 'quote " and \\ backslash'
    assert parsed["schema"]["missing"] == ["-"]
    (tmp_path / "site.toml").write_text(text)
    result = prepare(load_site_config(tmp_path / "site.toml"))
    assert result.report.rows_clean == 12
    assert SiteStore(tmp_path / "store").read("clean").columns == [*names, "_row_id"]


def test_constant_column_gets_no_range_but_validates(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("x,const,y\n" + "".join(f"{i},5,{i % 2}\n" for i in range(10)))
    schema = infer_schema(path)
    assert schema["columns"]["const"]["min"] is None
    assert "one value (5)" in schema["columns"]["const"]["note"]
    text = render_site_toml("s", "data.csv", schema)
    assert "# min = ..." in text
    config = load_site_config(write_site(tmp_path, path, schema))
    assert config.schema.columns["const"].min is None


def test_template_without_a_sample_validates(tmp_path):
    path, schema = init_site(tmp_path / "new-site")
    assert schema is None
    config = load_site_config(path)
    assert config.site.name == "new-site" and config.site.raw == "raw"
    roles = {n: c.role for n, c in config.schema.columns.items()}
    assert sorted(roles.values()) == [Role.FEATURE, Role.LABEL]
    text = path.read_text()
    assert all(f"[{s}]" in text for s in SECTIONS) and "A template" in text


def test_init_site_paths_and_refusal(tmp_path, clinic):
    inside = tmp_path / "site-a"
    inside.mkdir()
    (inside / "data.csv").write_text(clinic_csv())
    path, _ = init_site(inside, inside / "data.csv", name="a")
    assert load_site_config(path).site.raw == "data.csv"

    outside, _ = init_site(tmp_path / "site-b", clinic)
    assert load_site_config(outside).site.raw == str(clinic.resolve())
    assert load_site_config(outside).raw_location.resolve() == clinic.resolve()

    before = outside.read_text()
    with pytest.raises(ConfigError, match="already exists"):
        init_site(tmp_path / "site-b")
    assert outside.read_text() == before
    init_site(tmp_path / "site-b", force=True)
    assert "A template" in outside.read_text()
    assert not list((tmp_path / "site-b").glob(".site.toml*"))
    with pytest.raises(ConfigError, match="needs --from"):
        init_site(tmp_path / "site-c", names=["a"])


def test_inferred_table_lists_every_column(clinic):
    table = inferred_table(infer_schema(clinic))
    assert table.row_count == 9


# ------------------------------------------------------------------------------------ CLI


def test_cli_init_from_a_headerless_file(cli, tmp_path):
    sample = tmp_path / "export.csv"
    sample.write_text(
        "".join(f"{i};{i * 1.5};{'?' if i == 4 else i % 4};{i % 2}\n" for i in range(30))
    )
    result = cli("fedlife-site", "init", "site", "--from", sample, "--columns", "a,b,c,outcome")
    assert result.returncode == 0, result.stderr
    for text in ("outcome", "label", "header no", "review the ranges and roles"):
        assert text in result.stdout, result.stdout
    assert "fedlife-site prepare -c site/site.toml" in result.stdout
    config = load_site_config(tmp_path / "site" / "site.toml")
    assert config.site.name == "site" and config.raw_location.resolve() == sample.resolve()
    assert config.schema.delimiter == ";" and config.schema.header is False


def test_cli_init_refuses_to_overwrite(cli, assert_one_line_error, tmp_path):
    (tmp_path / "site").mkdir()
    existing = tmp_path / "site" / "site.toml"
    existing.write_text("# mine\n")
    result = cli("fedlife-site", "init", "site")
    assert_one_line_error(result, "site.toml", "already exists", "--force")
    assert existing.read_text() == "# mine\n"


def test_cli_init_bad_sample_is_one_line(cli, assert_one_line_error, tmp_path):
    (tmp_path / "empty.csv").write_bytes(b"")
    result = cli("fedlife-site", "init", "site", "--from", "empty.csv")
    assert_one_line_error(result, "empty.csv", "empty")
    assert not (tmp_path / "site" / "site.toml").exists()
