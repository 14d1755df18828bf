"""``keep_raw_table = false``: content-addressed copies of the raw files, no raw table."""

from __future__ import annotations

import hashlib
import json

import polars as pl

from client.pipeline.prepare import prepare
from client.retention.retain import retain
from client.store import RAW_FILES, SiteStore
from common.config import Role, load_site_config
from tests.client.subject_sites import subject_id, write_subject_site
from tests.client.test_pipeline import RAW_CSV, make_site
from tests.client.test_retention import holds_subject, request_erasure, store_holds


def without_raw_table(config, *, ids: bool = True):
    """``config`` without a raw table; ``ids`` False: its id column ignored (a site
    without an id column keeps copies of its raw files)."""
    config = config.model_copy(
        update={"site": config.site.model_copy(update={"keep_raw_table": False})}
    )
    if ids:
        return config
    columns = {
        n: c.model_copy(update={"role": Role.IGNORE}) if c.role is Role.ID else c
        for n, c in config.schema.columns.items()
    }
    return config.model_copy(
        update={"schema_": config.schema.model_copy(update={"columns": columns})}
    )


def copies_of(config, lineage: dict[str, str]) -> dict[str, dict[str, str]]:
    return json.loads(lineage["raw_files"])


def test_prepare_keeps_a_copy_named_by_its_digest_instead_of_a_raw_table(tmp_path):
    config = without_raw_table(make_site(tmp_path), ids=False)
    raw_file = tmp_path / "raw" / "data.csv"

    result = prepare(config)

    store = SiteStore(config.store_dir)
    assert store.latest("raw") is None
    assert store.read("clean").height == 7 and result.report.rows_read == 9
    lineage = store.latest("clean").lineage
    assert lineage["raw_version"] == ""
    digest = hashlib.sha256(raw_file.read_bytes()).hexdigest()
    record = copies_of(config, lineage)[str(raw_file)]
    assert record == {"sha256": digest, "copy": f"{RAW_FILES}/{digest}.csv"}
    assert (config.store_dir / record["copy"]).read_bytes() == raw_file.read_bytes()
    assert store.latest("quarantine").lineage["raw_files"] == lineage["raw_files"]


def test_unchanged_input_adds_nothing_and_a_changed_file_keeps_the_old_copy(tmp_path):
    config = without_raw_table(make_site(tmp_path), ids=False)
    raw_file = tmp_path / "raw" / "data.csv"
    first = prepare(config)
    assert prepare(config).unchanged
    old = copies_of(config, first.clean.lineage)[str(raw_file)]["copy"]

    raw_file.write_text(RAW_CSV + "9,70,130.0,1\n", encoding="utf-8")
    second = prepare(config)

    new = copies_of(config, second.clean.lineage)[str(raw_file)]["copy"]
    assert second.clean.version == first.clean.version + 1 and new != old
    assert (config.store_dir / old).read_text(encoding="utf-8") == RAW_CSV
    assert sorted(p.name for p in (config.store_dir / RAW_FILES).iterdir()) == sorted(
        [old.split("/")[-1], new.split("/")[-1]]
    )


def test_a_site_with_ids_keeps_only_digests_and_no_clear_id(tmp_path):
    path = write_subject_site(tmp_path, 0, rows=40)
    config = without_raw_table(load_site_config(path))
    result = prepare(config)
    raw_file = next(config.raw_location.iterdir())
    record = copies_of(config, result.clean.lineage)[str(raw_file)]
    assert record["copy"] == "" and len(record["sha256"]) == 64
    assert not (config.store_dir / RAW_FILES).exists()
    assert store_holds(config.store_dir, subject_id(0, 3)) == []  # only its pseudonym
    request_erasure(config, [subject_id(0, 3)])

    retain(config)

    raw_file.write_text(raw_file.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    later = prepare(config)
    record = copies_of(config, later.clean.lineage)[str(raw_file)]
    assert record["copy"] == "" and len(record["sha256"]) == 64
    assert holds_subject(config, subject_id(0, 3)) == []


def test_row_ids_number_repeated_ids_and_fall_back_to_the_position():
    from client.pipeline.dedupe import with_row_ids
    from client.pipeline.ingest import LINE, SOURCE
    from client.store import ROW_ID
    from common.config import SchemaSection

    schema = SchemaSection.model_validate(
        {"columns": {"id": {"type": "int", "role": "id"}, "y": {"type": "int", "role": "label"}}}
    )
    frame = pl.DataFrame(
        {
            "id": [7, 7, None, 8, 7],
            "y": [0, 1, 0, 1, 0],
            SOURCE: ["a.csv"] * 5,
            LINE: [2, 3, 4, 5, 6],
        }
    )

    assert with_row_ids(frame, schema)[ROW_ID].to_list() == ["7", "7#2", "a.csv:4", "8", "7#3"]
    unique = frame.filter(pl.col("id").is_not_null()).unique(
        "id", keep="first", maintain_order=True
    )
    assert with_row_ids(unique, schema)[ROW_ID].to_list() == ["7", "8"]

    # Pseudonyms are text: their repeats are found by hash, then compared whole.
    text = frame.with_columns(pl.col("id").cast(pl.String) + "f" * 63)
    numbered = ["7" + "f" * 63, "7" + "f" * 63 + "#2", "a.csv:4", "8" + "f" * 63]
    assert with_row_ids(text, schema)[ROW_ID].to_list() == [*numbered, "7" + "f" * 63 + "#3"]


def test_repeated_text_is_exactly_the_values_seen_twice():
    from client.pipeline.dedupe import repeated

    values = pl.Series(["a", "b", "a", None, None, "c", "c", "c", "d"])
    assert sorted(repeated(values).to_list()) == ["a", "c"]
    assert repeated(pl.Series(["x", None], dtype=pl.String)).len() == 0
