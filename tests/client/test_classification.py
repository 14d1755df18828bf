"""fedlife-site classify: every column's class and where it may go, from the schema;
``init`` writes the class into site.toml, a class that contradicts the role is refused."""

from __future__ import annotations

import json
import tomllib

import pytest
from typer.testing import CliRunner

from client.classification import classify_column
from client.cli import app
from client.pipeline.init import render_site_toml
from client.pipeline.prepare import config_hash
from common.config import ColumnSpec, Role, load_site_config
from common.data_classes import ALLOWED, DataClass, class_conflict, implied_class
from common.errors import ConfigError
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site


def test_identifiers_and_personal_columns_never_leave():
    pid = classify_column("pid", ColumnSpec(type="text", role=Role.ID))
    assert (pid.data_class, pid.leaves, pid.declared) == ("identifier", "never", False)
    pii = classify_column("name", ColumnSpec(type="text", role=Role.PII))
    assert (pii.data_class, pii.leaves) == ("personal", "never")
    assert pii.kept_in.startswith("nowhere")
    assert classify_column("d", ColumnSpec(type="text", role=Role.TIMESTAMP)).leaves == "never"


def test_a_public_feature_is_public_and_a_plain_one_leaves_only_as_aggregates():
    public = classify_column("age", ColumnSpec(role=Role.FEATURE, public=True))
    plain = classify_column("bp", ColumnSpec(role=Role.FEATURE))
    assert public.data_class == "public" and plain.data_class == "feature"
    assert plain.leaves.startswith("federation aggregates")


def test_a_declared_class_is_reported_and_must_agree_with_the_role():
    name = ColumnSpec.model_validate({"type": "text", "role": "pii", "class": "identifier"})
    shown = classify_column("name", name)
    assert (shown.data_class, shown.declared) == ("identifier", True)
    for role in Role:
        assert class_conflict(role, implied_class(role)) is None  # what init writes is accepted
        assert class_conflict(role, DataClass.FEATURE if role != "feature" else DataClass.LABEL)
    assert class_conflict("feature", DataClass.PUBLIC, public=True) is None
    assert "needs public = true" in class_conflict("feature", DataClass.PUBLIC)
    assert "contradicts public = true" in class_conflict("feature", DataClass.FEATURE, public=True)
    assert ALLOWED["id"] == (DataClass.IDENTIFIER,)


def site(tmp_path, **spec):
    dataset = breast_cancer()
    path = write_site(tmp_path, 0, dataset.frame[:40], dataset, 3.0, 1e-5)
    if spec:
        text = path.read_text()
        first = next(iter(load_site_config(path).schema.features))
        header = f"[schema.columns.{first}]\n"
        assert header in text
        extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in spec.items())
        path.write_text(text.replace(header, header + extra, 1))
    return path


def test_declaring_a_class_changes_nothing_prepare_compares(tmp_path):
    plain = load_site_config(site(tmp_path / "a"))
    declared = load_site_config(site(tmp_path / "b", **{"class": "feature"}))
    assert config_hash(plain) == config_hash(declared)


def test_init_writes_each_columns_class_and_it_loads_back():
    schema = {
        "format": "csv",
        "columns": {
            "pid": {"type": "text", "role": "id"},
            "name": {"type": "text", "role": "pii"},
            "age": {"type": "float", "role": "feature", "min": 0.0, "max": 120.0},
            "y": {"type": "int", "role": "label", "values": ["0", "1"]},
        },
    }
    data = tomllib.loads(render_site_toml("clinic", "raw.csv", schema))
    columns = data["schema"]["columns"]
    assert {n: c["class"] for n, c in columns.items()} == {
        "pid": "identifier",
        "name": "personal",
        "age": "feature",
        "y": "label",
    }
    template = tomllib.loads(render_site_toml("clinic", "raw.csv"))["schema"]["columns"]
    assert template["age"]["class"] == "feature"


def test_classify_lists_every_column_and_refuses_a_contradicting_class(tmp_path):
    runner = CliRunner()
    path = site(tmp_path / "ok")
    result = runner.invoke(app, ["classify", "-c", str(path), "--json"])
    assert result.exit_code == 0, result.output
    shown = {c["column"]: c for c in json.loads(result.stdout)}
    schema = load_site_config(path).schema
    assert set(shown) == set(schema.columns)
    assert shown[schema.label]["data_class"] == "label"
    table = runner.invoke(app, ["classify", "-c", str(path)], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and "may leave as" in table.stdout

    wrong = site(tmp_path / "wrong", **{"class": "identifier"})
    with pytest.raises(ConfigError, match="class 'identifier' contradicts role 'feature'"):
        load_site_config(wrong)
    refused = runner.invoke(app, ["classify", "-c", str(wrong)])
    assert refused.exit_code != 0 and "Traceback" not in refused.output
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "contradicts role 'feature'" in lines[0], refused.stderr
