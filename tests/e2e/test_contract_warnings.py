"""Sites that declare different public ranges are named by the coordinator.

The real ServerApp and ClientApps on Flower's simulation engine; after the virtual
sites are prepared, one of them widens a feature's declared range in its site.toml.
"""

from __future__ import annotations

import json
import re

import pytest

import simulations.runner as runner
from common.config import load_site_config
from simulations.runner import run
from simulations.spec import SimulationSpec

pytestmark = pytest.mark.e2e


def test_a_site_declaring_another_range_is_named_in_run_json_and_report(
    isolated_env, monkeypatch, tmp_path
):
    for name in ("RAY_TMPDIR", "FLWR_HOME", "FLWR_TELEMETRY_ENABLED"):
        monkeypatch.setenv(name, isolated_env[name])
    original = runner.materialise_sites
    widened = {}

    def materialise_then_widen(spec, dataset, run_path, sites_dir, on_site=None):
        result = original(spec, dataset, run_path, sites_dir, on_site)
        toml = sites_dir / "site-001" / "site.toml"
        columns = load_site_config(toml).schema.columns
        column = next(n for n, c in columns.items() if c.role == "feature" and c.max is not None)
        text = toml.read_text()
        start = text.index(f"[schema.columns.{column}]")
        match = re.compile(r"^max = [^\n]*", re.MULTILINE).search(text, start)
        toml.write_text(text[: match.start()] + "max = 100000.0" + text[match.end() :])
        widened[column] = columns[column].max
        return result

    monkeypatch.setattr(runner, "materialise_sites", materialise_then_widen)
    run(SimulationSpec(sites=2, rounds=1, run_dir=str(tmp_path / "run")))

    ((column, high),) = widened.items()
    warnings = json.loads((tmp_path / "run" / "run.json").read_text())["contract_warnings"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"{column}: sites declare different ranges (site-000: ")
    assert f"..{high:g}; site-001: " in warnings[0] and "..100000)" in warnings[0]
    page = (tmp_path / "run" / "report.html").read_text()
    assert f"feature contract: {column}: sites declare different ranges" in page
