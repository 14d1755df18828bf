"""The run report of a 5-site DP run: self-contained, under 5 MB, every section drawn,
no console error in headless chromium; TensorBoard events beside it."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from server.report.html import SECTIONS
from tests.conftest import new_cli_env
from tests.e2e.browser import render
from tests.e2e.conftest import run_cli, script, stop_processes_mentioning

pytestmark = pytest.mark.e2e
MAX_BYTES = 5 * 1024 * 1024


class _Sections(HTMLParser):
    """Section id -> the src of every <img> inside it (from the DOM chromium built)."""

    def __init__(self) -> None:
        super().__init__()
        self.images: dict[str, list[str]] = {}
        self.current: str | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "section":
            self.current = attributes.get("id")
            self.images[self.current] = []
        elif tag == "img" and self.current:
            self.images[self.current].append(attributes.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "section":
            self.current = None


@pytest.fixture(scope="module")
def cli_env_module():
    """``isolated_env`` for the whole module: one run serves every test here."""
    env = new_cli_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    yield env
    for path in (env["FLWR_HOME"], env["RAY_TMPDIR"]):
        stop_processes_mentioning(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, cli_env_module):
    run_dir = tmp_path_factory.mktemp("report") / "run"
    args = ["run", "--dataset", "synthetic_groups", "--sites", "5", "--rounds", "2"]
    result = run_cli(
        [script("fedlife-sim"), *args, "--run-dir", str(run_dir), "--json"], cli_env_module
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir, result


@pytest.mark.slow
def test_report_is_self_contained_small_and_complete_in_chromium(demo_run):
    run_dir, _ = demo_run
    page = run_dir / "report.html"
    assert page.stat().st_size < MAX_BYTES
    text = page.read_text()
    assert not re.findall(r'(?:src|href)="(?!data:|#)', text), "a link leaves the page"

    dom, console = render(page)
    assert not console, console
    parser = _Sections()
    parser.feed(dom)
    assert set(SECTIONS) <= set(parser.images), sorted(parser.images)
    for section in SECTIONS:
        if section == "overview":
            continue  # a table of figures, no plot
        images = parser.images[section]
        assert images, f"section {section} has no figure"
        for src in images:
            assert src.startswith("data:image/svg+xml;base64,"), src[:60]
            svg = ET.fromstring(base64.b64decode(src.split(",", 1)[1]))
            assert svg.tag.endswith("svg")


@pytest.mark.slow
def test_report_shows_what_the_run_measured(demo_run):
    run_dir, result = demo_run
    statistics = json.loads((run_dir / "statistics.json").read_text())
    assert sorted(statistics["quality"]) == [f"site-{i:03d}" for i in range(5)]
    for warning in statistics["warnings"]:  # drift warned about during the run
        assert warning in result.stderr
    last = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()][-1]
    fairness = last["fairness"]["federated"]["group"]
    assert fairness["demographic_parity_difference"] is not None
    assert set(last["importance"]["federated"]) >= {"x0", "region"}
    text = (run_dir / "report.html").read_text()
    assert f"{fairness['demographic_parity_difference']:.4g}" in text


@pytest.mark.slow
def test_tensorboard_events_hold_every_round(demo_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = demo_run
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"central/accuracy", "federated/loss", "privacy/epsilon/site-000"} <= tags
    assert [e.step for e in events.Scalars("central/accuracy")] == [1, 2]
    assert "fairness/group/demographic_parity_difference" in tags


@pytest.mark.slow
def test_coord_report_rewrites_the_page(demo_run, cli_env_module):
    run_dir, _ = demo_run
    (run_dir / "report.html").unlink()
    result = run_cli([script("fedlife-coord"), "report", str(run_dir)], cli_env_module)
    assert result.returncode == 0, result.stderr
    assert str(run_dir / "report.html") in result.stdout
    assert (run_dir / "report.html").stat().st_size > 10_000


def test_console_errors_are_caught(tmp_path):
    """The browser check itself can fail: a page that logs an error is caught."""
    page = tmp_path / "noisy.html"
    page.write_text(
        '<!DOCTYPE html><html><body><script>console.error("boom")</script></body></html>'
    )
    _, console = render(page)
    assert any("boom" in line for line in console)
