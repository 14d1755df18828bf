"""Retention and erasure at a site: what is removed is gone from every file of the store."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from deltalake.exceptions import TableNotFoundError
from typer.testing import CliRunner

from client.cli import app
from client.federation.global_model import load_global_model
from client.labeling.active import refresh_queue
from client.labeling.importing import import_labels
from client.pipeline.prepare import prepare
from client.privacy.ledger import LedgerEntry, PrivacyLedger
from client.privacy.pseudonyms import pseudonym
from client.retention.archive import Archive
from client.retention.erasure import ErasureRequests, PurgedVersions, site_key, subject_digest
from client.retention.retain import archive_key, retain, retain_site
from client.sealed_files import read_file
from client.sealing import read_sealed
from client.site_audit import site_audit
from client.store import SiteStore
from common.config import load_site_config
from common.errors import StoreError
from tests.client.subject_sites import subject_id, subject_name, write_subject_site
from tests.client.test_labeling import _export_model as export_model

ERASED = [3, 7, 11]


def make_site(tmp_path, retention: str = "", old_rows: int = 0):
    path = write_subject_site(tmp_path, 0, rows=40, old_rows=old_rows, retention=retention)
    config = load_site_config(path)
    # Prepared before the policy applied to them: the old rows aged while stored.
    prepare(config.model_copy(update={"retention": type(config.retention)()}))
    return path, config


def store_holds(store: Path, needle: str) -> list[str]:
    """Files under ``store`` holding ``needle``: in their bytes or, for Parquet, in any value.

    Parquet pages are compressed, so their bytes alone would hide a value: every
    Parquet file (data, archive, Delta checkpoints) is also decoded and searched.
    """
    found = []
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if needle.encode() in data:
            found.append(str(path))
        elif data[:4] == b"PAR1":
            text = json.dumps(pq.read_table(path).to_pylist(), default=str)
            if needle in text:
                found.append(f"{path} (decoded)")
    return found


# Files that record an erasure request: the request is the subject's pseudonym.
_REQUEST_FILES = {"audit.jsonl", "erasure-requests.json"}


def holds_subject(config, subject: str) -> list[str]:
    """Files of the store holding ``subject``'s id, in clear or as its pseudonym
    (besides the records of an erasure request, which are that pseudonym)."""
    key = site_key(config.store_dir)
    found = [*store_holds(config.store_dir, subject)]
    found += store_holds(config.store_dir, pseudonym(key, subject))
    return [f for f in found if Path(f.split(" ")[0]).name not in _REQUEST_FILES]


def rows_like(store: Path, values: dict[str, float]) -> list[str]:
    """Parquet files under ``store`` with a row whose columns hold all ``values``."""
    found = []
    for path in sorted(p for p in store.rglob("*") if p.is_file()):
        if path.read_bytes()[:4] != b"PAR1":
            continue
        columns = set(pq.read_schema(path).names)
        if not set(values) <= columns:
            continue
        frame = pl.read_parquet(path, columns=list(values))
        match = pl.all_horizontal(
            pl.col(c).cast(pl.Utf8).cast(pl.Float64, strict=False) == v for c, v in values.items()
        )
        if frame.filter(match).height:
            found.append(str(path))
    return found


def subject_values(config, row: int) -> dict[str, float]:
    raw = pl.read_csv(config.raw_location / "data.csv")
    return {c: raw[c][row] for c in ("age", "chol")}


def request_erasure(config, subjects: list[str]) -> None:
    key = site_key(config.store_dir)
    ErasureRequests(config.store_dir).add([subject_digest(key, s) for s in subjects])


def test_erased_subjects_are_in_no_file_of_the_store(tmp_path):
    path, config = make_site(tmp_path)
    store = SiteStore(config.store_dir)
    quality = config.quality.model_copy(update={"min_rows": 6})
    prepare(config.model_copy(update={"quality": quality}))  # a second clean version
    subjects = [subject_id(0, i) for i in ERASED]
    key = site_key(config.store_dir)
    stored = [pseudonym(key, s) for s in subjects]  # the store holds ids as pseudonyms
    assert store_holds(config.store_dir, stored[0])  # the search can find what is there
    assert store_holds(config.store_dir, subjects[0]) == []  # never the clear id
    assert rows_like(config.store_dir, subject_values(config, ERASED[0]))  # can find them
    first_clean = store.latest("clean").version
    request_erasure(config, subjects)

    report = retain(config)

    # The version retain reports is the one status shows (vacuum commits included).
    reported = {t.table: t.new_version for t in report.tables}
    assert reported["clean"] == store.latest("clean").version > first_clean + 1
    for i in ERASED:
        clear = subject_id(0, i)
        for needle in (clear, subject_name(0, i)):
            assert holds_subject(config, needle) == [], needle
        # The request itself is the pseudonym: only the requests and the audit log hold it.
        holding = store_holds(config.store_dir, pseudonym(key, clear))
        assert {Path(f).name for f in holding} == {"audit.jsonl", "erasure-requests.json"}
        assert rows_like(config.store_dir, subject_values(config, i)) == []  # nor their values
    kept = pseudonym(key, subject_id(0, 4))
    assert any("tables/clean" in f for f in store_holds(config.store_dir, kept))
    clean = store.read("clean")
    assert clean.height == 40 - len(ERASED)
    assert not clean.filter(pl.col("patient").is_in(stored)).height
    assert set(report.requests.values()) == {2}  # each subject: one raw and one clean row
    assert PurgedVersions(config.store_dir).erased() == list(range(first_clean + 1))
    with pytest.raises(TableNotFoundError):  # the versions that held them cannot be read any more
        store.read("clean", first_clean)
    assert ErasureRequests(config.store_dir).pending() == []
    again = prepare(config)  # another config hash: the raw files are read again
    assert not again.unchanged and again.report.rows_clean == 40 - len(ERASED)
    assert not any(
        "tables" in f for f in store_holds(config.store_dir, stored[0])
    )  # erased stays erased
    log = site_audit(config)
    assert log.verify() is None
    actions = [e["action"] for e in log.entries()]
    assert actions[-5:] == ["retain", "erase", "erase", "erase", "prepare"]


def test_expired_rows_are_archived_then_deleted_and_dry_run_changes_nothing(tmp_path):
    policy = "max_age_days = 365\nkeep_versions_days = 7"
    path, config = make_site(tmp_path, policy, old_rows=8)
    store = SiteStore(config.store_dir)
    before = {t: store.latest(t).version for t in ("raw", "clean")}

    preview = retain(config, dry_run=True)
    assert {t.table: t.expired for t in preview.tables}["clean"] == 8
    assert {t: store.latest(t).version for t in ("raw", "clean")} == before
    assert Archive(config.store_dir / "archive").files() == []

    report = retain(config)
    assert store.read("clean").height == 32
    archive = Archive(config.store_dir / "archive", key=archive_key(config))
    archived = archive.files()
    assert sorted(p.parent.name for p in archived) == ["clean", "raw"]
    clean_archive = archive.read(next(p for p in archived if p.parent.name == "clean"))
    assert clean_archive.height == 8
    assert clean_archive["seen"].dt.year().unique().to_list() == [2010]
    plain = read_sealed(archive.key, archived[0], archive.context(archived[0]))
    assert pq.ParquetFile(io.BytesIO(plain)).metadata.row_group(0).column(0).compression == "ZSTD"
    # sealed: no id, name or value of an archived row is in the files' bytes
    for needle in (subject_id(0, 1), subject_name(0, 1), f"{clean_archive['chol'][0]}"):
        assert store_holds(config.store_dir / "archive", needle) == [], needle
    data = bytearray(archived[0].read_bytes())
    data[len(data) // 2] ^= 1
    archived[0].write_bytes(bytes(data))
    with pytest.raises(StoreError, match="archive file refused"):
        archive.read(archived[0])
    # the version before the deletion stays readable inside the time-travel window
    assert store.read("clean", before["clean"]).height == 40
    assert all(t.versions_dropped == [] for t in report.tables)


def test_versions_past_the_window_are_vacuumed(tmp_path):
    path, config = make_site(tmp_path, "max_age_days = 365\nkeep_versions_days = 0", old_rows=8)
    store = SiteStore(config.store_dir)
    old = store.latest("clean").version
    retain(config)
    with pytest.raises(TableNotFoundError):
        store.read("clean", old)
    assert store.read("clean").height == 32
    assert PurgedVersions(config.store_dir).all()["clean"] == {str(old): "retention"}
    assert PurgedVersions(config.store_dir).erased() == []  # expired, not erased


def test_retain_site_is_what_a_ray_task_calls(tmp_path):
    path, config = make_site(tmp_path, "max_age_days = 365", old_rows=5)
    report = retain_site(path, dry_run=True)
    assert json.loads(json.dumps(report))["site"] == "site-000"
    assert {t["table"] for t in report["tables"]} == {"raw", "quarantine", "clean"}


def run_cli(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def test_erase_now_reports_an_unknown_id_and_erases_the_rest(tmp_path):
    path, config = make_site(tmp_path)
    code, out, err = run_cli("erase", subject_id(0, 3), "NOBODY-1", "-c", path, "--now")
    assert code == 0, err
    assert f"{subject_id(0, 3)}: 2 row(s) erased" in out
    assert "NOBODY-1: no rows found at this site" in out
    assert holds_subject(config, subject_id(0, 3)) == []
    assert store_holds(config.store_dir, "NOBODY-1") == []  # not even the request keeps it
    code, out, err = run_cli("audit", "verify", "-c", path)
    assert code == 0 and "intact" in out


def test_a_negative_age_is_a_one_line_error(tmp_path):
    path, config = make_site(tmp_path)
    path.write_text(path.read_text() + "max_age_days = -3\n")
    code, out, err = run_cli("retain", "-c", path)
    assert code != 0
    assert err.count("\n") == 1 and "retention.max_age_days" in err and "Traceback" not in err


def test_an_unwritable_archive_deletes_nothing(tmp_path):
    (tmp_path / "not-a-folder").write_text("")  # even root cannot make a folder in a file
    policy = f'max_age_days = 365\narchive_dir = "{tmp_path / "not-a-folder" / "archive"}"'
    path, config = make_site(tmp_path, policy, old_rows=8)
    store = SiteStore(config.store_dir)
    before = {t: store.latest(t).version for t in ("raw", "quarantine", "clean")}
    code, out, err = run_cli("retain", "-c", path)
    assert code != 0
    assert err.startswith("error:") and "not writable" in err and err.count("\n") == 1
    assert {t: store.latest(t).version for t in ("raw", "quarantine", "clean")} == before
    assert store.read("clean").height == 40


def test_a_broken_audit_log_fails_verify_naming_the_entry(tmp_path):
    path, config = make_site(tmp_path)
    retain(config)
    log = site_audit(config)
    text = log.path.read_text().splitlines()
    text[0] = text[0].replace('"prepare"', '"label"')
    log.path.write_text("\n".join(text) + "\n")
    code, out, err = run_cli("audit", "verify", "-c", path)
    assert code != 0 and "line 1 (seq 1)" in err and "edited" in err


def test_an_erasure_reaches_the_archive_and_old_archive_files_expire(tmp_path):
    policy = "max_age_days = 365\narchive_max_age_days = 30"
    path, config = make_site(tmp_path, policy, old_rows=8)
    retain(config)  # rows 0-7 are archived
    archive = Archive(config.store_dir / "archive", key=archive_key(config))
    subject = pseudonym(site_key(config.store_dir), subject_id(0, 2))  # as the store holds it
    assert any(subject in archive.read(p)["patient"].to_list() for p in archive.files())
    request_erasure(config, [subject_id(0, 2)])
    report = retain(config)
    assert holds_subject(config, subject_id(0, 2)) == []
    assert sum(report.archive_erased.values()) == 2  # its raw and its clean row
    assert all(archive.read(p).height == 7 for p in archive.files())
    assert not any(subject in archive.read(p)["patient"].to_list() for p in archive.files())
    old = archive.files()[0]
    os.utime(old, (0, 0))  # written in 1970: past archive_max_age_days
    assert retain(config).archive_expired == [str(old)]
    assert not old.exists() and len(archive.files()) == 1


def test_age_by_ingestion_expires_what_was_written_too_long_ago(tmp_path):
    path, config = make_site(tmp_path, 'max_age_days = 0\nage_by = "ingestion"\narchive = false')
    report = retain(config)
    assert {t.table: t.expired for t in report.tables} == {"raw": 40, "quarantine": 0, "clean": 40}
    assert SiteStore(config.store_dir).read("clean").height == 0
    assert Archive(config.store_dir / "archive").files() == []


def test_an_erasure_reaches_unlabeled_rows_their_labels_and_the_queue(tmp_path):
    path = write_subject_site(tmp_path, 0, rows=40)
    raw = path.parent / "raw" / "data.csv"
    frame = pl.read_csv(raw)
    hidden = pl.int_range(pl.len()) < 12  # rows 0-11 arrive without a label
    frame.with_columns(pl.when(hidden).then(None).otherwise(pl.col("num")).alias("num")).write_csv(
        raw
    )
    config = load_site_config(path)
    prepare(config)
    store = SiteStore(config.store_dir)
    labels = tmp_path / "labels.csv"
    labels.write_text(f"row_id,num\n{subject_id(0, 3)},1\n{subject_id(0, 5)},0\n")
    import_labels(store, config, labels, annotator="ann")
    _, export = export_model(path, tmp_path / "coordinator")
    queue = refresh_queue(store, config, load_global_model(export), size=10)  # all unlabeled
    subjects = [subject_id(0, i) for i in (3, 7)]  # 3: labeled by hand; 7: still unlabeled
    for needle in subjects:
        assert any("unlabeled" in f for f in holds_subject(config, needle))
    assert any("labeled" in f for f in holds_subject(config, subjects[0]))
    queued = pseudonym(site_key(config.store_dir), subjects[1])
    assert queued in read_file(config.store_dir, queue.csv).decode()
    assert queued.encode() not in queue.csv.read_bytes()  # the sheet is sealed
    request_erasure(config, subjects)

    retain(config)
    assert queued not in read_file(config.store_dir, queue.csv).decode()

    for needle in subjects:
        assert holds_subject(config, needle) == [], needle
    assert any("unlabeled" in f for f in holds_subject(config, subject_id(0, 5)))
    log = site_audit(config)
    assert log.verify() is None
    actions = [e["action"] for e in log.entries()]
    assert actions.index("label-import") < actions.index("label-queue") < actions.index("retain")


def test_a_later_prepare_does_not_bring_expired_rows_back(tmp_path):
    path, config = make_site(tmp_path, "max_age_days = 365", old_rows=8)
    retain(config)
    store = SiteStore(config.store_dir)
    assert store.read("clean").height == 32

    quality = config.quality.model_copy(update={"min_rows": 6})
    again = prepare(config.model_copy(update={"quality": quality}))  # reads the raw files again

    assert not again.unchanged and again.report.rows_clean == 32
    for table in ("raw", "clean"):
        assert (
            2010
            not in store.read(table)["seen"].cast(pl.Utf8).str.slice(0, 4).cast(pl.Int32).to_list()
        )


def test_a_removed_audit_log_fails_verify_when_the_ledger_saw_it(tmp_path):
    path, config = make_site(tmp_path)
    ledger = PrivacyLedger(config.store_dir)
    for round_ in (1, 2):
        ledger.record(
            LedgerEntry(
                noise_multiplier=1.0,
                sample_rate=0.1,
                steps=5,
                delta=1e-5,
                run_id="r",
                round=round_,
                table_version=0,
            )
        )
    code, out, err = run_cli("audit", "verify", "-c", path)
    assert code == 0 and "privacy ledger intact: 2 releases" in out, err
    log = site_audit(config)
    log.path.unlink()
    log.head_path.unlink()
    code, out, err = run_cli("audit", "verify", "-c", path)
    assert code != 0 and "audit log was removed or rolled back" in err, out
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    ("policy", "old_rows", "erase"),
    [("", 0, True), ("max_age_days = 365\nkeep_versions_days = 0", 8, False)],
    ids=["erasure", "expiry-no-window"],
)
def test_dry_run_counts_the_files_and_versions_the_real_run_removes(
    tmp_path, policy, old_rows, erase
):
    """Where the real run's new version makes the current one's files vacuumable at
    once (erasure, or no time-travel window), the dry run counts them too."""
    path, config = make_site(tmp_path, policy, old_rows=old_rows)
    if erase:
        quality = config.quality.model_copy(update={"min_rows": 6})
        prepare(config.model_copy(update={"quality": quality}))  # a superseded version
        request_erasure(config, [subject_id(0, i) for i in ERASED])

    preview = retain(config, dry_run=True)
    report = retain(config)

    def removed(r):
        return {t.table: (t.files_vacuumed, t.versions_dropped) for t in r.tables}

    assert removed(preview) == removed(report)
    assert {t.table: t.expired + t.erased > 0 for t in report.tables}["clean"]
    assert report.tables[0].files_vacuumed > 0
