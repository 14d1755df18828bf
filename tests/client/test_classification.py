"""fedlife-site classify: every column's class and where it may go, from the schema."""

from __future__ import annotations

import json

from client.classification import classify_column
from common.config import ColumnSpec, Role, load_site_config
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site


def test_identifiers_and_personal_columns_never_leave():
    assert classify_column("pid", ColumnSpec(type="text", role=Role.ID)).leaves == "never"
    pii = classify_column("name", ColumnSpec(type="text", role=Role.PII))
    assert (pii.data_class, pii.leaves) == ("personal", "never")
    assert classify_column("d", ColumnSpec(type="text", role=Role.TIMESTAMP)).leaves == "never"


def test_a_public_feature_is_public_and_a_plain_one_leaves_only_as_aggregates():
    public = classify_column("age", ColumnSpec(role=Role.FEATURE, public=True))
    plain = classify_column("bp", ColumnSpec(role=Role.FEATURE))
    assert public.data_class == "public" and plain.data_class == "feature"
    assert plain.leaves.startswith("federation aggregates")


def test_classify_lists_every_column_of_the_schema(tmp_path, cli):
    dataset = breast_cancer()
    path = write_site(tmp_path, 0, dataset.frame[:40], dataset, 3.0, 1e-5)
    result = cli("fedlife-site", "classify", "-c", path, "--json")
    assert result.returncode == 0, result.stderr
    shown = {c["column"]: c for c in json.loads(result.stdout)}
    schema = load_site_config(path).schema
    assert set(shown) == set(schema.columns)
    assert shown[schema.label]["data_class"] == "label"
    table = cli("fedlife-site", "classify", "-c", path)
    assert table.returncode == 0 and "may leave as" in table.stdout
