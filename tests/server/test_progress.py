"""``fedlife-coord run``'s progress: rounds read from the run directory the ServerApp writes."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap

import pytest
from rich.console import Console

from server.report.progress import RoundWatcher, round_line, watch_process
from server.report.terminal import print_report
from server.round_report import RoundReport, round_record
from server.run_dir import RunDirectory


def _round(number: int, *, excluded: bool = False) -> RoundReport:
    report = RoundReport(number, 3)
    for site, epsilon in (("a", 0.41 * number), ("b", 0.39 * number)):
        report.participants.append({"site": site, "epsilon": epsilon, "epsilon_budget": 3.0})
    report.federated = {"accuracy": 0.5 + number / 10}
    if excluded:
        report.excluded.append({"site": "c", "reason": "schema drift: age -> years"})
    return report


def test_a_round_line_says_round_accuracy_epsilon_per_site_and_exclusions(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    run.append_round(round_record(_round(2, excluded=True)))
    (record,) = RoundWatcher(run.path).new_rounds()
    assert round_line(record) == (
        "round 2: accuracy 0.700, epsilon a 0.82 b 0.78, 1 excluded (c: schema drift: age -> years)"
    )


def test_many_sites_give_the_range_of_their_epsilons_and_no_dp_says_so():
    many = {"round": 1, "participants": [{"site": f"s{i}", "epsilon": i / 10} for i in range(9)]}
    assert "9 sites, epsilon 0.00..0.80" in round_line(many)
    no_dp = {"round": 1, "participants": [{"site": "a", "epsilon": None}]}
    assert round_line(no_dp) == "round 1: accuracy n/a, 1 sites, no DP"
    stopped = {"round": 4, "participants": [], "excluded": [], "stopped": "too few updates"}
    assert round_line(stopped).endswith("no site trained, stopped: too few updates")


def test_the_watcher_returns_each_round_once_and_waits_for_a_line_being_written(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    watcher = RoundWatcher(run.path)
    assert watcher.new_rounds() == []  # no metrics.jsonl yet
    run.append_round(round_record(_round(1)))
    assert [r["round"] for r in watcher.new_rounds()] == [1]
    assert watcher.new_rounds() == []
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('{"round": 2, "particip')  # the writer is mid-line
    assert watcher.new_rounds() == []
    with open(run.path / "metrics.jsonl", "a") as handle:
        handle.write('ants": []}\n')
    assert [r["round"] for r in watcher.new_rounds()] == [2]
    resumed = RoundWatcher(run.path, skip_existing=True)
    run.append_round(round_record(_round(3)))
    assert [r["round"] for r in resumed.new_rounds()] == [3]  # a resumed run's old rounds


# A ServerApp stand-in: the real writers, one round at a time, each after the watcher
# acknowledged the one before (so the test needs no sleeps to prove rounds come live).
WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from server.run_dir import RunDirectory
    from server.round_report import RoundReport, round_record
    run = RunDirectory.create(sys.argv[1])
    for number in (1, 2, 3):
        report = RoundReport(number, 3)
        report.participants.append({"site": "a", "epsilon": 0.5 * number})
        run.append_round(round_record(report))
        while number < 3 and not (run.path / f"ack-{number}").exists():
            time.sleep(0.05)
    """
)


def test_rounds_are_seen_while_the_run_goes_on_and_none_is_missed_at_its_end(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)])
    seen: list[tuple[int, bool]] = []

    def on_round(record: dict) -> None:
        seen.append((record["round"], process.poll() is None))
        (run_dir / f"ack-{record['round']}").touch()

    code = watch_process(process, RoundWatcher(run_dir), on_round, every_s=0.05)
    assert code == 0
    assert [number for number, _ in seen] == [1, 2, 3]
    assert seen[0][1] and seen[1][1]  # rounds 1 and 2 arrived while the run was running


@pytest.mark.parametrize("width", [80, 120])
def test_a_deployed_runs_closing_table_names_each_site_its_epsilon_and_fate(width):
    summary = {
        "run_dir": "/srv/fedlife/runs/20261205-181500-000001",
        "epsilon_spent": {"hospital-a": 2.91, "hospital-b": 2.88},
        "epsilon_budget": {"hospital-a": 3.0, "hospital-b": 3.0},
        "excluded": [{"site": "hospital-c", "reason": "schema drift: age -> years"}],
        "stopped_reason": "",
        "rounds": 15,
        "test_accuracy": 0.8421,
        "evaluated_on": "central test split",
        "wall_s": 431.2,
    }
    out = io.StringIO()
    print_report(summary, Console(file=out, width=width, color_system=None))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= width
    text = out.getvalue()
    assert "2.910 / 3" in text and "2.880 / 3" in text
    assert "hospital-c" in text and "excluded: schema drift" in text
    assert "injected" not in text  # a deployment has no simulated dirt
    ending = " ".join(text.split())  # the summary line folds at 80 columns
    assert ending.endswith("run directory /srv/fedlife/runs/20261205-181500-000001")
