"""A prepare stopped between its raw and clean commits: status and the next prepare name it.

The stop is made in-process: the clean commit raises as a SIGKILL would end the
process there (``tests/client/test_prepare_safety.py`` kills a real one).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from client.pipeline.incremental import RUN
from client.pipeline.prepare import SUPERSEDES, prepare
from client.pipeline.unfinished import unfinished_prepare
from client.retention.retain import retain
from client.site_audit import site_audit
from client.store import SiteStore
from common.config import load_site_config
from tests.client.test_retention import make_site as retention_site
from tests.client.test_site_cli import ROWS, csv_text


class Killed(BaseException):
    """Ends prepare where a SIGKILL would: nothing after it runs."""


def _killed_at_clean(commit):
    def killed(self, table, *args, **kwargs):
        if table == "clean":
            raise Killed
        return commit(self, table, *args, **kwargs)

    return killed


@pytest.fixture
def stopped(grown_site: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clean v0 from a finished prepare; then a prepare that committed raw and
    quarantine v1 and stopped before clean."""
    config = grown_site
    with monkeypatch.context() as patch:
        for method in ("write", "append"):  # a full or an incremental prepare
            patch.setattr(SiteStore, method, _killed_at_clean(getattr(SiteStore, method)))
        with pytest.raises(Killed):
            prepare(load_site_config(config))
    store = SiteStore(config.parent / "store")
    assert (store.latest("raw").version, store.latest("clean").version) == (1, 0)
    return config


def test_a_finished_prepare_leaves_nothing_unfinished(stopped):
    store = SiteStore(stopped.parent / "store")
    before = unfinished_prepare(store)
    assert before is not None
    prepare(load_site_config(stopped))
    assert unfinished_prepare(store) is None


def test_unfinished_prepare_names_the_versions_it_left(stopped):
    store = SiteStore(stopped.parent / "store")
    found = unfinished_prepare(store)
    assert found is not None
    assert found.run == store.latest("raw").lineage[RUN] != store.latest("clean").lineage[RUN]
    assert found.versions == {"raw": (1, ROWS + 2 + 2), "quarantine": (1, 0)}
    assert found.clean_version == 0
    line = found.describe()
    assert f"unfinished prepare {found.run[:8]}" in line
    assert "raw version 1 (34 rows)" in line and "clean version 0 is from an earlier" in line


def test_status_names_the_unfinished_prepare(cli, stopped):
    run = SiteStore(stopped.parent / "store").latest("raw").lineage[RUN]

    result = cli("fedlife-site", "status", "-c", stopped, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["unfinished_prepare"]["run"] == run

    shown = cli("fedlife-site", "status", "-c", stopped)
    assert shown.returncode == 0, shown.stderr
    warning = shown.stderr.strip()
    assert warning.startswith(f"warning: unfinished prepare {run[:8]}"), shown.stderr
    assert "raw version 1" in warning and "next fedlife-site prepare supersedes it" in warning


def test_the_next_prepare_names_and_supersedes_it(stopped):
    store = SiteStore(stopped.parent / "store")
    run = store.latest("raw").lineage[RUN]

    result = prepare(load_site_config(stopped))

    assert result.notice.startswith(f"unfinished prepare {run[:8]} committed raw version 1")
    assert "this prepare supersedes it" in result.notice
    assert result.clean.version == 1
    for table in ("raw", "quarantine", "clean"):
        assert store.latest(table).lineage[SUPERSEDES] == run, table
    assert store.latest("raw").version == 2  # the orphan v1 is explained by v2's lineage
    entries = site_audit(load_site_config(stopped)).entries()
    stopped_entry = next(e for e in entries if e["action"] == "prepare-unfinished")
    assert stopped_entry["fields"]["prepare_run"] == run
    assert stopped_entry["fields"]["versions"] == {"raw": 1, "quarantine": 1}
    assert entries[-1]["action"] == "prepare"


def test_an_unchanged_input_after_the_stop_still_finishes_a_prepare(stopped):
    """The stopped prepare's input is taken back: the clean version matches it again,
    yet raw v1 is unexplained, so prepare does not stop at 'unchanged'."""
    (stopped.parent / "data.csv").write_text(csv_text())
    result = prepare(load_site_config(stopped))
    assert not result.unchanged and "unfinished prepare" in result.notice
    assert unfinished_prepare(SiteStore(stopped.parent / "store")) is None


def test_retain_rewriting_tables_is_not_an_unfinished_prepare(tmp_path):
    path, config = retention_site(tmp_path, "max_age_days = 365\nkeep_versions_days = 0", 8)
    report = retain(config)
    assert {t.table for t in report.tables if t.new_version is not None} >= {"raw", "clean"}
    assert unfinished_prepare(SiteStore(config.store_dir)) is None
