"""``fedlife-sim run``'s progress bar counts rounds once the rounds start (issue 24).

A 15-round run over 5 fresh sites once ended at ``federated rounds 20/20 round 15``:
the bar went on counting the sites' preparation steps. The planned run is real (its
run directory made by ``plan``); only the Ray simulation is a stand-in that reports
what a real one reports to the bar: each site prepared, then each round.
"""

from __future__ import annotations

import io

from rich.console import Console

import common.cli
import simulations.cli
import simulations.runner
from server.round_report import RoundReport
from simulations.runner import plan
from simulations.spec import SimulationSpec

SITES, ROUNDS = 5, 15


def test_the_bar_ends_at_the_rounds_run_not_rounds_plus_sites(tmp_path, monkeypatch):
    planned = plan(SimulationSpec(sites=SITES, rounds=ROUNDS, run_dir=str(tmp_path / "run")))
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=160, color_system=None)
    monkeypatch.setattr(common.cli, "err_console", terminal)
    seen: list[tuple[float | None, float]] = []

    def ray_run(_planned, on_round, on_site):
        for site in range(SITES):
            on_site(f"site-{site:03d}", {"result": {"rows_clean": 40}})
        for number in range(1, ROUNDS + 1):
            on_round(RoundReport(round=number, num_rounds=ROUNDS, central={"accuracy": 0.9}))
            task = progress.tasks[0]
            seen.append((task.total, task.completed))
        return {}

    real_bar = common.cli.progress_bar

    def kept_bar(*args):
        nonlocal progress
        progress = real_bar(*args)
        return progress

    progress = None
    monkeypatch.setattr(simulations.runner, "run", ray_run)
    monkeypatch.setattr(simulations.cli, "progress_bar", kept_bar)
    simulations.cli.run_with_progress(planned)
    assert seen == [(ROUNDS, number) for number in range(1, ROUNDS + 1)]
    final = screen.getvalue().rsplit("\r", 1)[-1]
    assert "federated rounds" in final and f"{ROUNDS}/{ROUNDS}" in final, final
    assert f"round {ROUNDS}: accuracy 0.900" in final, final
    assert f"{ROUNDS + SITES}/{ROUNDS + SITES}" not in final, final
