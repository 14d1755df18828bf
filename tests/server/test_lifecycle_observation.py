"""retrain's quantities from the sites' answers against the champion's statistics.json:
new versions, drift against the site's own data then (the federation's for a new
site), the smallest budget left."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import polars as pl
import pytest

from common.errors import RunDirError
from common.stats import table_stats
from server.lifecycle.observation import SiteAnswer, observe


def histograms(values: list[str]) -> str:
    frame = pl.DataFrame({"age_bin": values})
    return table_stats(frame, [], ["age_bin"]).to_json()


OLD = ["a"] * 40 + ["b"] * 40 + ["c"] * 40
SHIFTED = ["a"] * 10 + ["b"] * 30 + ["c"] * 80


@pytest.fixture
def champion(tmp_path: Path) -> Path:
    run = tmp_path / "champion"
    run.mkdir()
    site = json.loads(histograms(OLD))
    record = {
        "versions": {s: {"version": 3, "previous_version": 2} for s in ("s1", "s2")},
        "drift": {
            "sites": {"s1": site, "s2": site},
            "federation": {"age_bin": site["columns"]["age_bin"]},
        },
    }
    (run / "statistics.json").write_text(json.dumps(record))
    (run / "summary.json").write_text("{}")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(run / "summary.json", (two_days_ago, two_days_ago))
    return run


def test_nothing_new(champion: Path) -> None:
    answers = [SiteAnswer(s, 3, histograms(OLD), 2.0) for s in ("s1", "s2")]
    seen = observe(champion, answers)
    assert seen.values["new_versions"] == 0
    assert seen.values["drift"] == pytest.approx(0.0, abs=1e-9)
    assert seen.values["budget_left"] == 2.0
    assert seen.values["days_since"] == pytest.approx(2.0, abs=0.01)
    assert seen.values["sites"] == 2


def test_new_version_with_drift_and_a_new_site(champion: Path) -> None:
    answers = [
        SiteAnswer("s1", 4, histograms(SHIFTED), 0.5),
        SiteAnswer("s2", 3, histograms(OLD), None),
        SiteAnswer("s3", 0, histograms(SHIFTED), 1.0),  # unseen: against the federation
        SiteAnswer("s4", 1, None, None),  # too few rows to release: no drift
    ]
    seen = observe(champion, answers)
    by_site = {row["site"]: row for row in seen.sites}
    assert seen.values["new_versions"] == 3  # s1 changed; s3 and s4 are new
    assert by_site["s1"]["drift"] > 0.25 and by_site["s1"]["drift_column"] == "age_bin"
    assert by_site["s3"]["drift"] == pytest.approx(by_site["s1"]["drift"])
    assert by_site["s2"]["drift"] == pytest.approx(0.0, abs=1e-9)
    assert by_site["s4"]["drift"] is None
    assert seen.values["drift"] == by_site["s1"]["drift"]
    assert seen.values["budget_left"] == 0.5
    assert [r["site"] for r in seen.drifted(0.25)] == ["s1", "s3"]


def test_without_dp_the_budget_is_unbounded(champion: Path) -> None:
    seen = observe(champion, [SiteAnswer("s1", 3, histograms(OLD), None)])
    assert math.isinf(seen.values["budget_left"])


def test_a_champion_without_statistics(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="no statistics.json"):
        observe(tmp_path, [])
