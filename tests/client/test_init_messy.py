"""``fedlife-site init`` on a messy export (tests/fixtures/messy.csv), then prepare and erase."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import polars as pl
import pytest

from client.pipeline.init import infer_schema, init_site
from client.pipeline.prepare import prepare
from client.store import SiteStore
from common.config import SchemaSection, load_site_config
from common.errors import ConfigError, CsvLayoutError


def _site(messy_csv: Path) -> Path:
    """A site folder whose site.toml init guessed from the messy sample."""
    target, _ = init_site(messy_csv.parent / "site", messy_csv, name="messy")
    return target


def test_decimal_commas_are_numbers_not_missing_markers(messy_csv):
    alcohol = infer_schema(messy_csv)["columns"]["alcohol"]
    assert alcohol["type"] == "float" and alcohol["decimal"] == ","
    assert alcohol["missing"] == [] and alcohol["nulls"] == 0
    assert "4 values with a decimal comma (e.g. '12,29')" in alcohol["note"]

    target = _site(messy_csv)
    assert tomllib.loads(target.read_text())["schema"]["columns"]["alcohol"]["decimal"] == ","
    result = prepare(load_site_config(target))
    assert result.report.rejected == {}
    clean = SiteStore(target.parent / "store").read("clean")
    assert {12.29, 13.5, 11.8, 14.05} <= set(clean.get_column("alcohol").to_list())
    assert clean.get_column("alcohol").null_count() == 0


def test_without_decimal_comma_those_rows_go_to_quarantine(messy_csv):
    target = _site(messy_csv)
    text = target.read_text().replace('decimal = ","', "")
    target.write_text(text)
    result = prepare(load_site_config(target))
    assert result.report.rejected == {"alcohol: not float": 4}
    quarantine = SiteStore(target.parent / "store").read("quarantine")
    assert sorted(quarantine.get_column("alcohol").to_list()) == ["11,8", "12,29", "13,5", "14,05"]
    assert set(quarantine.get_column("_reason").to_list()) == {"alcohol: not float"}


def test_decimal_comma_typed_read_and_text_read_agree(messy_csv):
    from client.pipeline.ingest import raw_files, read_raw
    from client.pipeline.validate import validate, validate_files

    config = load_site_config(_site(messy_csv))
    # Only columns without markers of their own: the typed read applies.
    columns = {n: config.schema.columns[n] for n in ("alcohol", "color", "target")}
    config = config.model_copy(update={"schema_": SchemaSection(columns=columns)})
    typed = validate_files(raw_files(config), config.schema)
    text = validate(read_raw(config), config.schema)
    assert typed is not None
    assert typed.valid.get_column("alcohol").equals(text.valid.get_column("alcohol"))
    assert typed.valid.schema["alcohol"] == pl.Float64


def test_ranges_are_robust_and_outliers_listed(messy_csv):
    columns = infer_schema(messy_csv)["columns"]
    magnesium = columns["magnesium"]
    assert (magnesium["min"], magnesium["max"]) == (78.0, 150.0)
    assert magnesium["outside"] == [1270.0, 12700.0]
    assert "left outside the range" in magnesium["note"] and "12700" in magnesium["note"]
    assert magnesium["missing"] == []  # an outlier is a value, not a marker


def test_sentinels_are_candidate_markers_with_a_note(messy_csv):
    columns = infer_schema(messy_csv)["columns"]
    proline = columns["proline"]
    assert proline["missing"] == ["-99999", "99999"] and proline["nulls"] == 3
    assert proline["min"] > 0 and proline["max"] < 99999
    assert "'-99999', '99999' look like 'no value' codes" in proline["note"]
    age = columns["age"]
    assert age["missing"] == ["-1"] and age["min"] > 0
    assert "'-1' looks like a 'no value' code" in age["note"]

    target = _site(messy_csv)
    result = prepare(load_site_config(target))
    assert result.report.clipped.get("magnesium") == 2
    assert result.report.imputed == {"age": 1, "proline": 3}
    clean = SiteStore(target.parent / "store").read("clean")
    assert clean.get_column("magnesium").max() <= 150


def test_minus_one_next_to_zeros_stays_a_value(tmp_path):
    path = tmp_path / "scores.csv"
    rows = ["change,y", *(f"{[-1, 0, 1, 2, 3][i % 5]},{i % 2}" for i in range(40))]
    path.write_text("\n".join(rows) + "\n")
    change = infer_schema(path)["columns"]["change"]
    assert change["missing"] == [] and change["min"] == -1.0


def test_id_repeated_by_duplicate_rows_stays_id_and_erase_works(messy_csv, cli):
    patient = infer_schema(messy_csv)["columns"]["patient_id"]
    assert patient["role"] == "id" and "whole duplicated rows" in patient["note"]

    target = _site(messy_csv)
    config = load_site_config(target)
    assert config.cleaning.dedupe is True
    assert prepare(config).report.duplicates_dropped == 6
    done = cli("fedlife-site", "erase", "P1002", "P1009", "--now", "-c", target)
    assert done.returncode == 0, done.stderr
    assert "P1002: no rows" not in done.stdout and "P1002: " in done.stdout
    clean = SiteStore(target.parent / "store").read("clean")
    assert clean.height == 118


def test_id_repeated_across_distinct_rows_is_an_id_with_dedupe(tmp_path):
    path = tmp_path / "visits.csv"
    rows = [f"S{i // 3},{50 + i},{i % 2}" for i in range(30)]  # 3 visits per subject
    path.write_text("subject_id,weight,outcome\n" + "\n".join(rows) + "\n")
    schema = infer_schema(path)
    subject = schema["columns"]["subject_id"]
    assert subject["role"] == "id" and "visits" in subject["note"]
    assert schema["cleaning"] == {"dedupe": "id"}
    target, _ = init_site(tmp_path / "site", path, name="visits")
    config = load_site_config(target)
    assert config.cleaning.dedupe == "id"
    assert prepare(config).report.rows_clean == 10


def test_init_fills_a_provisioned_stub_and_keeps_its_site(messy_csv, tmp_path):
    from server.deploy.provision import provision

    provision(tmp_path / "federation", ["hosp_a"])
    bundle = tmp_path / "federation" / "sites" / "hosp_a"
    stub = tomllib.loads((bundle / "site.toml").read_text())["site"]
    target, _ = init_site(bundle, messy_csv)  # no --force: the stub has no schema yet
    config = load_site_config(target)
    assert config.site.model_dump(include=set(stub)) == stub
    assert config.schema.columns["alcohol"].decimal == ","
    # A site.toml with a schema is the operator's: still refused without --force.
    with pytest.raises(ConfigError, match="already exists"):
        init_site(bundle, messy_csv)
    with pytest.raises(ConfigError, match="named 'hosp_a'"):
        (bundle / "site.toml").write_text('[site]\nname = "hosp_a"\nraw = "raw"\n')
        init_site(bundle, messy_csv, name="other")


def test_duplicated_header_is_refused_naming_the_column(messy_csv, tmp_path):
    target = _site(messy_csv)
    lines = messy_csv.read_text().splitlines()
    lines[0] = lines[0].replace("color", "age")  # two 'age' columns
    bad = tmp_path / "dup.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(CsvLayoutError, match="column 'age' is named twice"):
        infer_schema(bad)
    config = load_site_config(target)
    config = config.model_copy(update={"site": config.site.model_copy(update={"raw": str(bad)})})
    with pytest.raises(CsvLayoutError, match="column 'age' is named twice"):
        prepare(config)


def test_wrong_delimiter_names_the_one_that_parses(messy_csv, tmp_path, cli, assert_one_line_error):
    target = _site(messy_csv)
    semicolons = pl.read_csv(messy_csv, infer_schema=False)
    raw = target.parent / "semi.csv"
    semicolons.write_csv(raw, separator=";")
    with pytest.raises(CsvLayoutError, match="parses with delimiter ';'"):
        infer_schema(raw, delimiter=",")
    target.write_text(target.read_text().replace(str(messy_csv), str(raw)))
    result = cli("fedlife-site", "prepare", "-c", target)
    assert_one_line_error(result, "semi.csv", "delimiter ';'")
    assert raw.read_bytes() == semicolons.write_csv(separator=";").encode()


def test_text_feature_warns_at_init_and_prepare(messy_csv, cli):
    comment = infer_schema(messy_csv)["columns"]["comment"]
    assert comment["type"] == "text" and comment["role"] == "feature"
    assert "free text as a feature" in comment["note"]

    site = messy_csv.parent / "site"
    init = cli("fedlife-site", "init", site, "--from", messy_csv)
    assert init.returncode == 0, init.stderr
    assert "warning: comment: free text as a feature" in init.stderr
    prepared = cli("fedlife-site", "prepare", "-c", site / "site.toml")
    assert prepared.returncode == 0, prepared.stderr
    assert "warning: column 'comment' is text with role 'feature'" in prepared.stderr
    again = prepare(load_site_config(site / "site.toml"))  # unchanged input: still said
    assert again.unchanged and len(again.warnings) == 1


def test_ints_written_as_floats_note_quotes_a_value_of_the_column(messy_csv):
    note = infer_schema(messy_csv)["columns"]["age"]["note"]
    quoted = note.split("ints written as floats ('")[1].split("')")[0]
    assert quoted in pl.read_csv(messy_csv, infer_schema=False).get_column("age").to_list()


def test_unknown_config_key_suggests_the_nearest(messy_csv, cli, assert_one_line_error):
    target = _site(messy_csv)
    target.write_text(target.read_text().replace("dedupe = true", "dedup = true"))
    with pytest.raises(ConfigError, match=r"cleaning\.dedup: unknown key; did you mean 'dedupe'\?"):
        load_site_config(target)
    text = target.read_text().replace("dedup = true", "dedupe = true")
    target.write_text(text.replace('decimal = ","', 'decimals = ","'))
    result = cli("fedlife-site", "prepare", "-c", target)
    assert_one_line_error(result, "schema.columns.alcohol.decimals", "did you mean 'decimal'?")


def test_number_written_oddly_is_never_a_marker(messy_csv, tmp_path):
    lines = messy_csv.read_text().splitlines()
    header = lines[0].split(",")
    at = header.index("magnesium")
    fields = lines[5].split(",")
    fields[at] = '"1.234,5"'  # thousands dot and decimal comma: no reader takes it
    lines[5] = ",".join(fields)
    odd = tmp_path / "odd.csv"
    odd.write_text("\n".join(lines) + "\n")
    magnesium = infer_schema(odd)["columns"]["magnesium"]
    assert magnesium["type"] == "int" and magnesium["missing"] == []
    assert "1 values written like numbers do not parse (e.g. '1.234,5')" in magnesium["note"]


def test_readme_init_command_runs_verbatim_in_a_bundle(messy_csv, tmp_path, cli):
    from server.deploy.provision import provision

    provision(tmp_path / "federation", ["hosp_b"])
    bundle = tmp_path / "federation" / "sites" / "hosp_b"
    shutil.copyfile(messy_csv, bundle / "sample.csv")
    # README, "Deployment": fedlife-site init . --from sample.csv
    done = cli("fedlife-site", "init", ".", "--from", "sample.csv", cwd=bundle)
    assert done.returncode == 0, done.stderr
    config = load_site_config(bundle / "site.toml")
    assert config.site.name == "hosp_b" and config.site.raw == "raw"
    assert config.schema.label == "target"


def test_decimal_comma_for_the_whole_file(messy_csv):
    target = _site(messy_csv)
    text = target.read_text().replace('decimal = ","', "")
    assert 'decimal = "."' in text  # the [schema] key, written by init
    target.write_text(text.replace('decimal = "."', 'decimal = ","', 1))
    config = load_site_config(target)
    assert config.schema.decimal == "," and config.schema.decimal_of("alcohol") == ","
    assert prepare(config).report.rejected == {}
    clean = SiteStore(target.parent / "store").read("clean")
    assert 12.29 in clean.get_column("alcohol").to_list()

    # A column's own decimal overrides the file's.
    text = target.read_text().replace(
        "[schema.columns.alcohol]\n", '[schema.columns.alcohol]\ndecimal = "."\n'
    )
    target.write_text(text)
    assert prepare(load_site_config(target)).report.rejected == {"alcohol: not float": 4}


def test_a_header_ending_in_delimiters_is_no_repeat(messy_csv, tmp_path):
    target = _site(messy_csv)
    lines = [f"{line},," for line in messy_csv.read_text().splitlines()]
    padded = tmp_path / "padded.csv"
    padded.write_text("\n".join(lines) + "\n")
    config = load_site_config(target)
    config = config.model_copy(update={"site": config.site.model_copy(update={"raw": str(padded)})})
    assert prepare(config).report.rows_clean == 120
