"""``prepare``'s phases timed one by one: the ``--phases`` step of ``bench_prepare.py``."""

from __future__ import annotations

import time
from pathlib import Path

from child_steps import peak_mib
from dirty_table import TOML_NAME, seed_site_key


def child_steps(directory: Path, route: str) -> dict:
    """``prepare``'s own steps (its ``on_step`` names), timed: the out-of-core route's
    phases, which run inside ``prepare``."""
    from client.pipeline.prepare import prepare
    from common.config import load_site_config

    phases: list[dict] = []
    baseline = peak_mib()
    clock, current = time.perf_counter(), "load_site_config"

    def lap(name: str) -> None:
        nonlocal clock, current
        now = time.perf_counter()
        phases.append({"phase": current, "wall_s": now - clock, "peak_rss_mib": peak_mib()})
        clock, current = now, name

    config = load_site_config(directory / TOML_NAME)
    seed_site_key(directory, config.store_dir)
    chosen = {"auto": None, "out-of-core": True, "in-memory": False}[route]
    result = prepare(config, lap, out_of_core=chosen)
    lap("")
    return {
        "phases": phases,
        "peak_rss_mib": peak_mib(),
        "baseline_rss_mib": baseline,
        "rows": result.report.rows_clean,
        "gate_reasons": result.gate_reasons,
    }


def child_phases(directory: Path) -> dict:
    """``prepare``'s phases, timed one by one, in the order ``prepare`` runs them.

    Two layouts of ``client`` are understood: the one-module pipeline
    (``pipeline.ingest`` -> raw table -> ``pipeline.clean`` -> clean table) and the
    staged one (``ingest.read_raw`` -> ``validate.validate`` -> ``clean.clean``, then
    raw, quarantine and clean tables).
    """
    import json as _json

    import polars as pl

    from client.integrity import sha256_file as sha256_of
    from client.pipeline import pipeline
    from client.pipeline.prepare import config_hash, gate
    from client.store import SiteStore
    from common.config import load_site_config

    phases: list[dict] = []
    seed_site_key(directory, load_site_config(directory / TOML_NAME).store_dir)
    baseline = peak_mib()
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        phases.append({"phase": name, "wall_s": now - clock, "peak_rss_mib": peak_mib()})
        clock = now

    config = load_site_config(directory / TOML_NAME)
    lap("load_site_config")
    try:  # ids stored as keyed pseudonyms (issue 23): prepare's first step
        from client.retention.pseudonymize import ensure_pseudonymized
    except ImportError:
        ensure_pseudonymized = None
    if ensure_pseudonymized is not None:
        ensure_pseudonymized(config, create=True)
        lap("pseudonym record (new store)")
    inputs = {str(p): sha256_of(p) for p in pipeline.raw_files(config)}
    lap("sha256 of raw files")
    store = SiteStore(config.store_dir)
    lineage = {"config_hash": config_hash(config), "inputs": _json.dumps(inputs, sort_keys=True)}
    store.latest("clean")
    lap("config hash + store.latest")
    if not hasattr(pipeline, "run"):  # one-module pipeline
        raw = pipeline.ingest(config)
        lap("ingest (read + type)")
        raw_version = store.write("raw", raw, {"operation": "ingest", **lineage})
        lap("store.write raw")
        cleaned, report = pipeline.clean(raw, config)
        lap("clean")
        reasons = gate(cleaned, config)
        lap("gate")
    else:  # staged pipeline
        from client.pipeline import clean as cleaning
        from client.pipeline import validate as validation
        from client.pipeline.clean import missing_fractions, numeric_features
        from client.pipeline.ingest import read_raw
        from client.pipeline.validate import validate

        reject = config.cleaning.outliers == "reject"
        validated, raw = None, pl.DataFrame()  # no raw text unless the raw table is kept
        keep_raw = getattr(config.site, "keep_raw_table", True)
        if hasattr(validation, "validate_files"):  # numbers typed as read
            files = pipeline.raw_files(config)
            validated = validation.validate_files(files, config.schema, reject_out_of_range=reject)
            lap("read + validate (typed CSV read, quarantine)")
            if validated is not None and keep_raw:
                raw = read_raw(config)
                lap("ingest.read_raw (text, for the raw table)")
        if validated is None:
            raw = read_raw(config)
            lap("ingest.read_raw (text)")
            validated = validate(raw, config.schema, reject_out_of_range=reject)
            lap("validate (type + quarantine)")
        if hasattr(pipeline, "pseudonymized"):  # as read_validated does after validating
            raw, validated = pipeline.pseudonymized(config, raw, validated)
            lap("pseudonymize ids (HMAC-SHA256)")
        missing = missing_fractions(validated.valid, numeric_features(config.schema))
        if hasattr(cleaning, "clean_with_unlabeled"):  # clean and unlabeled in one pass
            cleaned, report, unlabeled = cleaning.clean_with_unlabeled(validated.valid, config)
            lap("clean (+ unlabeled rows)")
        else:
            cleaned, report = cleaning.clean(validated.valid, config)
            lap("clean")
            unlabeled = pipeline._unlabeled(validated, config)
            lap("clean unlabeled rows (second pass)")
        reasons = gate(cleaned, config, missing)
        lap("gate")
        if getattr(config.site, "keep_raw_table", True):
            raw_version = store.write("raw", raw, {"operation": "ingest", **lineage}, archive=True)
            raw_record = {"raw_version": str(raw_version.version)}
            lap("store.write raw")
        else:
            from client.pipeline.prepare import store_raw_files

            raw_record = {"raw_files": _json.dumps(store_raw_files(config, inputs))}
            lap("keep raw files (content-addressed copies)")
        store.write(
            "quarantine",
            validated.quarantine,
            {"operation": "quarantine", **raw_record, **lineage},
            archive=True,
        )
        lap("store.write quarantine")
        if unlabeled.height:
            store.write("unlabeled", unlabeled, {"operation": "unlabeled", **lineage})
            lap("store.write unlabeled")
    if hasattr(pipeline, "run"):
        lineage = {**lineage, **raw_record}
    else:
        lineage = {**lineage, "raw_version": str(raw_version.version)}
    store.write("clean", cleaned, {"operation": "clean", **lineage})
    lap("store.write clean")
    return {
        "phases": phases,
        "peak_rss_mib": peak_mib(),
        "baseline_rss_mib": baseline,
        "rows": report.rows_clean,
        "gate_reasons": reasons,
    }
