"""The lifecycle commands' bad input: one line, exit != 0, nothing written; and the
schedules they print. In-process (typer's runner): each console script's start-up
would cost seconds per call."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from client.cli import app as site_app
from server.cli import app as coord_app
from simulations.cli import app as sim_app

APPS = {"fedlife-site": site_app, "fedlife-coord": coord_app, "fedlife-sim": sim_app}


class _Result:
    def __init__(self, result) -> None:
        self.returncode = result.exit_code
        self.stdout = result.stdout
        self.stderr = result.stderr


@pytest.fixture
def cli():
    runner = CliRunner()

    def invoke(script: str, *args) -> _Result:
        return _Result(runner.invoke(APPS[script], [str(a) for a in args], env={"COLUMNS": "200"}))

    return invoke


@pytest.fixture
def parent(tmp_path):
    """A folder that looks like a finished run to the commands that check run.json."""
    run = tmp_path / "runs" / "root"
    (run / "sites").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"run_id": "r", "config": {}}))
    return run


@pytest.mark.parametrize(
    ("when", "needle"),
    [("drift >", "does not parse"), ("drfit > 1", "unknown quantity 'drfit'")],
)
def test_sim_retrain_bad_when(cli, assert_one_line_error, parent, when, needle):
    result = cli("fedlife-sim", "retrain", parent, "--when", when)
    assert_one_line_error(result, needle)
    assert sorted(p.name for p in parent.parent.iterdir()) == ["root"]  # no event, no alias


def test_sim_retrain_missing_parent(cli, assert_one_line_error, tmp_path):
    result = cli("fedlife-sim", "retrain", tmp_path / "gone", "--when", "drift > 1")
    assert_one_line_error(result, "parent run does not exist")
    assert not (tmp_path / "gone").exists()


def test_coord_retrain_bad_input(cli, assert_one_line_error, parent, tmp_path):
    state = tmp_path / "state"
    result = cli("fedlife-coord", "retrain", "--state", state, "--from", parent, "--when", "x")
    assert_one_line_error(result, "unknown quantity 'x'")
    missing = tmp_path / "gone"
    result = cli(
        "fedlife-coord", "retrain", "--state", state, "--from", missing, "--when", "sites>1"
    )
    assert_one_line_error(result, "parent run does not exist")
    assert not state.exists()


def test_promote_unevaluated_changes_nothing(cli, assert_one_line_error, parent):
    result = cli("fedlife-coord", "models", "promote", parent)
    assert_one_line_error(result, "never evaluated")
    assert sorted(p.name for p in parent.parent.iterdir()) == ["root"]


def test_rollback_with_nothing_to_roll_back(cli, assert_one_line_error, tmp_path):
    result = cli("fedlife-coord", "models", "rollback", "--state", tmp_path)
    assert_one_line_error(result, "no previous model")


SITE_TOML = """
[site]
name = "st mary"
raw = "raw"

[schema.columns.age]
type = "int"
role = "feature"
min = 0
max = 120

[schema.columns.sick]
type = "int"
role = "label"
values = ["0", "1"]
"""


def test_site_schedule_print(cli, tmp_path):
    (tmp_path / "site.toml").write_text(SITE_TOML)
    result = cli("fedlife-site", "schedule", "print", "-c", tmp_path / "site.toml", "--hour", "23")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for unit in ("prepare", "retain"):
        assert f"# file: fedlife-site-st-mary-{unit}.service" in out
        assert f"# file: fedlife-site-st-mary-{unit}.timer" in out
    assert "OnCalendar=*-*-* 23:00:00" in out and "OnCalendar=*-*-* 00:00:00" in out
    assert f"prepare --config {tmp_path / 'site.toml'}" in out
    crontab = [line for line in out.splitlines() if line.startswith(("0 23 ", "0 0 "))]
    assert len(crontab) == 2 and all("flock -n" in line for line in crontab)


def test_site_schedule_bad_time(cli, assert_one_line_error, tmp_path):
    (tmp_path / "site.toml").write_text(SITE_TOML)
    result = cli("fedlife-site", "schedule", "print", "-c", tmp_path / "site.toml", "--hour", "24")
    assert_one_line_error(result, "not a time of day")


def test_coord_schedule_print(cli, assert_one_line_error, parent, tmp_path):
    state = tmp_path / "state"
    when = "drift > 0.3 or days_since >= 7"
    args = ("schedule", "print", "--state", state, "--from", parent, "--when", when)
    result = cli("fedlife-coord", *args)
    assert result.returncode == 0, result.stderr
    assert "# file: fedlife-coord-retrain.timer" in result.stdout
    assert f"retrain --state {state} --from {parent} --when '{when}'" in result.stdout
    bad = cli("fedlife-coord", *args[:-1], "drift => 1")
    assert_one_line_error(bad, "does not parse")
