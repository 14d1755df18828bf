"""Pseudonymized ids (issue 23): no file of the store holds an id of the raw files."""

from __future__ import annotations

import io
import json
import secrets

import polars as pl
import pytest
from deltalake.exceptions import TableNotFoundError

import client.labeling.importing as importing
import client.pipeline.pipeline as pipeline_module
import client.pipeline.prepare as prepare_module
from client.labeling.importing import import_labels
from client.pipeline import streamed
from client.pipeline.prepare import prepare
from client.privacy.pseudonyms import (
    pseudonym,
    pseudonymize_frame,
    pseudonyms,
    row_id_pseudonym,
    site_key,
)
from client.retention import pseudonymize
from client.retention.archive import Archive
from client.retention.pseudonymize import MARKER
from client.sealed_files import read_file
from client.store import ROW_ID, SiteStore
from common.config import SchemaSection, load_site_config
from tests.client.subject_sites import subject_id, subject_name, write_subject_site
from tests.client.test_retention import holds_subject, run_cli, store_holds

ROWS = 40


def subject_site(tmp_path, *, unlabeled: int = 6, visits: int = 2):
    """A subject site (id, pii name) whose first rows have no label and one row is bad."""
    path = write_subject_site(tmp_path, 0, rows=ROWS, visits=visits)
    raw = path.parent / "raw" / "data.csv"
    lines = raw.read_text().splitlines()
    for i in range(1, unlabeled + 1):  # no label: the unlabeled table
        lines[i] = lines[i].rsplit(",", 1)[0] + ","
    cells = lines[-1].split(",")
    cells[3] = "not-a-number"  # age: this row goes to the quarantine
    lines[-1] = ",".join(cells)
    raw.write_text("\n".join(lines) + "\n")
    return path, load_site_config(path)


def clear_values(config) -> tuple[list[str], list[str]]:
    """Every id and every name written in the site's raw file."""
    raw = pl.read_csv(config.raw_location / "data.csv", infer_schema=False)
    return raw["patient"].unique().to_list(), raw["full_name"].unique().to_list()


def assert_no_clear_value(config) -> None:
    ids, names = clear_values(config)
    for needle in [*ids, *names]:
        assert store_holds(config.store_dir, needle) == [], needle


# A key as site_key makes it (text: hashed natively), one as stores made before hold
# it (32 raw bytes, not UTF-8: hashed in Python), and two the HMAC must shorten or pad.
KEYS = {
    "new": secrets.token_hex(32).encode("ascii"),
    "old": bytes(range(200, 232)),
    "long-text": "ключ".encode() * 20,
    "long-raw": bytes(range(256)) * 2,
}


def test_a_new_store_gets_a_text_key_and_an_old_key_is_kept(tmp_path):
    key = site_key(tmp_path / "new")
    assert len(key) == 64 and int(key, 16) >= 0  # 64 hex digits: 256 random bits
    assert site_key(tmp_path / "new") == key
    (tmp_path / "old" / "audit").mkdir(parents=True)
    (tmp_path / "old" / "audit" / "hmac.key").write_bytes(KEYS["old"])
    assert site_key(tmp_path / "old") == KEYS["old"]


@pytest.mark.parametrize("key", KEYS.values(), ids=KEYS.keys())
def test_pseudonyms_are_the_erasure_digests_and_keep_repeats_apart(key):
    values = pl.Series("id", [" P1", "P1", None, "P2", "P1"])
    hashed = pseudonyms(values, key)
    assert hashed.to_list()[0] == hashed.to_list()[1] == pseudonym(key, "P1")
    assert hashed.to_list()[2] is None and hashed.to_list()[3] != hashed.to_list()[0]
    assert len(pseudonym(key, "P1")) == 64 and pseudonym(b"x" * 32, "P1") != pseudonym(key, "P1")
    assert pseudonyms(pl.Series("id", [None, None], dtype=pl.String), key).to_list() == [None] * 2
    assert pseudonyms(pl.Series([7, 7]), key).to_list() == [pseudonym(key, "7")] * 2
    assert row_id_pseudonym(key, "P1#3") == pseudonym(key, "P1") + "#3"
    unique = pl.Series([f"S{i}" for i in range(10)])  # the path hashing every row
    assert pseudonyms(unique, key).to_list() == [pseudonym(key, f"S{i}") for i in range(10)]
    # Every row hashed, nulls and non-ASCII text among them: still hmac's digest.
    mixed = pl.Series(["S0", None, "é", "S1"])
    expected = [pseudonym(key, "S0"), None, pseudonym(key, "é"), pseudonym(key, "S1")]
    assert pseudonyms(mixed, key).to_list() == expected


@pytest.mark.parametrize("key", [KEYS["new"], KEYS["old"]], ids=["new", "old"])
def test_a_number_id_read_as_text_has_the_pseudonym_of_its_value(key):
    """The raw table and the quarantine hold text: '017' is the subject 17 there too."""
    schema = SchemaSection.model_validate(
        {"columns": {"id": {"type": "int", "role": "id"}, "y": {"type": "int", "role": "label"}}}
    )
    text = pl.DataFrame({"id": [" 017", "abc", None], "y": ["1", "0", "1"]})
    expected = [pseudonym(key, "17"), pseudonym(key, "abc"), None]
    assert pseudonymize_frame(text, schema, key)["id"].to_list() == expected
    assert pseudonymize_frame(text.lazy(), schema, key).collect()["id"].to_list() == expected
    typed = pl.DataFrame({"id": [17], "y": [1]})
    assert pseudonymize_frame(typed, schema, key)["id"].to_list() == expected[:1]


def test_no_file_of_the_store_holds_a_raw_id_after_prepare_label_import_and_erase(tmp_path):
    path, config = subject_site(tmp_path)
    assert config.site.keep_raw_table  # the raw table too
    prepare(config)
    store = SiteStore(config.store_dir)
    for table in ("raw", "quarantine", "unlabeled", "clean"):
        assert store.latest(table) is not None, table
    assert store.read("quarantine").height == 1
    assert "full_name" not in store.read("clean").columns  # pii never enters the store
    assert "full_name" not in store.read("raw").columns
    key = site_key(config.store_dir)
    kept, erased = subject_id(0, 10), subject_id(0, 12)
    clean = store.read("clean")
    assert set(clean["patient"]) >= {pseudonym(key, kept), pseudonym(key, erased)}
    assert pseudonym(key, kept) + "#2" in clean[ROW_ID].to_list()  # a second visit
    labels = tmp_path / "labels.csv"  # by clear ids, as an operator knows them
    labels.write_text(f"row_id,num\n{subject_id(0, 0)},1\n{subject_id(0, 1)}#2,0\nNOBODY,1\n")
    report = import_labels(store, config, labels, annotator="ann")
    assert sum(report.applied.values()) == 2 and report.unknown_ids == ["NOBODY"]
    assert set(store.read("labeled")[ROW_ID]) == {
        pseudonym(key, subject_id(0, 0)),
        pseudonym(key, subject_id(0, 1)) + "#2",
    }
    code, out, err = run_cli("erase", erased, "-c", path, "--now")
    assert code == 0, err
    assert f"{erased}: 4 row(s) erased" in out  # two visits, in the raw and clean tables

    assert_no_clear_value(config)
    assert holds_subject(config, erased) == []
    assert any("tables/clean" in f for f in store_holds(config.store_dir, pseudonym(key, kept)))


def test_the_out_of_core_route_stores_the_same_pseudonyms(tmp_path, monkeypatch):
    """Out of core (its stage too) and in memory give the same tables, ids pseudonymized."""
    tables, staged = {}, []
    run = streamed.run

    def searched(config, files, work, on_step=None):
        result = run(config, files, work, on_step)
        ids, names = clear_values(config)  # the stage, while it exists
        staged.extend(f for v in [*ids, *names] for f in store_holds(work, v))
        staged.append("searched")
        return result

    monkeypatch.setattr(streamed, "run", searched)
    for route in (False, True):
        root = tmp_path / str(route)
        root.mkdir()
        path = write_subject_site(root, 0, rows=ROWS)
        text = path.read_text().replace('type = "datetime"\nrole = "timestamp"', 'type = "text"')
        path.write_text(text)
        config = load_site_config(path)
        config.store_dir.mkdir(parents=True)
        (config.store_dir / "audit").mkdir()
        (config.store_dir / "audit" / "hmac.key").write_bytes(b"s" * 32)  # one key for both
        result = prepare(config, out_of_core=route)
        assert result.clean.lineage["rows"] == str(ROWS)
        tables[route] = SiteStore(config.store_dir).read("clean").sort(ROW_ID)
        assert "full_name" not in tables[route].columns
        assert_no_clear_value(config)
    assert staged == ["searched"]  # the stage was searched and held none of them
    assert tables[False].equals(tables[True])
    assert set(tables[True]["patient"]) == {
        pseudonym(b"s" * 32, subject_id(0, i)) for i in range(ROWS)
    }


def test_lookup_shows_a_subjects_rows_and_refuses_an_unknown_id(tmp_path):
    path, config = subject_site(tmp_path)
    code, out, err = run_cli("lookup", subject_id(0, 10), "-c", path)
    assert code == 2 and "no tables in the store yet" in err
    assert not (config.store_dir / "audit" / "hmac.key").exists()  # no key made for nothing
    prepare(config)
    code, out, err = run_cli("lookup", subject_id(0, 10), "-c", path, "--json")
    assert code == 0, err
    found = json.loads(out)
    assert found["pseudonym"] == pseudonym(site_key(config.store_dir), subject_id(0, 10))
    by_source = {t["source"]: t["rows"] for t in found["tables"]}
    assert len(by_source["clean"]) == 2 and len(by_source["raw"]) == 2  # two visits
    code, out, err = run_cli("lookup", subject_id(0, 10), "-c", path)
    assert code == 0 and "clean (version" in out and "2 row(s)" in out
    code, out, err = run_cli("lookup", "NOBODY-7", "-c", path)
    assert code == 2 and "NOBODY-7: no row of this subject" in err
    assert len(err.strip().splitlines()) == 1


def _clear_store(monkeypatch, config) -> None:
    """A store as prepare wrote it before ids were pseudonymized (clear ids, pii)."""
    with monkeypatch.context() as patched:
        patched.setattr(pipeline_module, "pseudonymized", lambda config, raw, valid: (raw, valid))
        patched.setattr(prepare_module, "without_personal", lambda frame, schema: frame)
        patched.setattr(prepare_module, "ensure_pseudonymized", lambda config, create: None)
        quality = config.quality.model_copy(update={"min_rows": 6})
        prepare(config.model_copy(update={"quality": quality}))
        prepare(config)  # a second version, of the site's own config
        patched.setattr(importing, "ensure_pseudonymized", lambda config: None)
        labels = config.base_dir / "labels.csv"
        labels.write_text(f"row_id,num\n{subject_id(0, 0)},1\n")
        import_labels(SiteStore(config.store_dir), config, labels)


def test_migrate_rewrites_a_clear_store_and_drops_the_versions_before(tmp_path, monkeypatch):
    path, config = subject_site(tmp_path)
    _clear_store(monkeypatch, config)
    store = SiteStore(config.store_dir)
    clean = store.read("clean")
    Archive(config.store_dir / "archive").write("clean", clean.head(3))  # an old archive
    sheet = config.store_dir / "labeling" / "queue-v0.csv"
    sheet.parent.mkdir(parents=True)
    clean.head(4).select(pl.col(ROW_ID).alias("row_id"), "age").write_csv(sheet)
    (config.store_dir / "raw_files").mkdir()
    (config.store_dir / "raw_files" / "copy.csv").write_text(subject_name(0, 3))
    ids, _ = clear_values(config)
    assert store_holds(config.store_dir, ids[5]) and store_holds(
        config.store_dir, subject_name(0, 3)
    )
    old_clean = store.latest("clean").version

    code, out, err = run_cli("migrate", "-c", path)

    assert code == 0, err
    assert "pseudonymized" in out and (config.store_dir / MARKER).exists()
    assert_no_clear_value(config)
    key = site_key(config.store_dir)
    migrated = store.read("clean")
    assert migrated.height == clean.height and "full_name" not in migrated.columns
    assert set(migrated["patient"]) == {pseudonym(key, v) for v in clean["patient"]}
    assert store.read("labeled")[ROW_ID].to_list() == [pseudonym(key, subject_id(0, 0))]
    with pytest.raises(TableNotFoundError):  # time travel before the migration is gone
        store.read("clean", old_clean)
    assert not sheet.exists()  # sealed when rewritten
    sheet = sheet.with_name("queue-v0.csv.sealed")
    sheet_ids = _sheet(config, sheet)["row_id"].to_list()
    assert sheet_ids == [row_id_pseudonym(key, v) for v in clean.head(4)[ROW_ID]]
    assert not (config.store_dir / "raw_files").exists()
    # Everything keyed by id goes on: the next prepare finds nothing new, erase finds rows.
    assert prepare(config).unchanged
    code, out, err = run_cli("erase", subject_id(0, 4), "-c", path, "--now")
    assert code == 0 and f"{subject_id(0, 4)}: " in out and "row(s) erased" in out, out
    assert holds_subject(config, subject_id(0, 4)) == []
    code, out, err = run_cli("migrate", "-c", path)
    assert code == 0 and "already" in out
    (config.store_dir / MARKER).unlink()  # its record lost: pseudonyms are not hashed twice
    before = {t: store.latest(t).version for t in ("clean", "labeled")}
    sheet_now = _sheet(config, sheet)["row_id"].to_list()
    code, out, err = run_cli("migrate", "-c", path)
    assert code == 0, err
    assert {t: store.latest(t).version for t in before} == before
    assert set(store.read("clean")["patient"]) < set(migrated["patient"])
    assert _sheet(config, sheet)["row_id"].to_list() == sheet_now


def _sheet(config, path) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(read_file(config.store_dir, path)), infer_schema=False)


def test_the_first_prepare_migrates_a_clear_store(tmp_path, monkeypatch):
    path, config = subject_site(tmp_path)
    _clear_store(monkeypatch, config)
    code, out, err = run_cli("prepare", "-c", path)
    assert code == 0, err
    assert "the store held clear ids: pseudonymized" in out
    assert_no_clear_value(config)


def test_a_migration_stopped_after_a_rewrite_is_finished_by_the_next(tmp_path, monkeypatch):
    path, config = subject_site(tmp_path)
    _clear_store(monkeypatch, config)
    store = SiteStore(config.store_dir)
    clear = store.read("clean")
    old = store.latest("clean").version

    def killed(path, hours, *, dry_run):
        raise KeyboardInterrupt  # stopped after the first table's new version

    with monkeypatch.context() as patched:
        patched.setattr(pseudonymize.delta_history, "vacuum", killed)
        with pytest.raises(KeyboardInterrupt):
            pseudonymize.migrate(config)
    assert not (config.store_dir / MARKER).exists()

    code, out, err = run_cli("migrate", "-c", path)

    assert code == 0, err
    assert_no_clear_value(config)
    key = site_key(config.store_dir)
    assert set(store.read("clean")["patient"]) == {pseudonym(key, v) for v in clear["patient"]}
    with pytest.raises(TableNotFoundError):
        store.read("clean", old)
