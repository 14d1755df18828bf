"""The coordinator's central-DP ledger: across runs, a budget, a chain, one writer at a time."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from opacus.accountants import RDPAccountant

from common.config import RunConfig
from common.errors import LedgerError
from server.central_dp import site_level_epsilon
from server.central_dp_ledger import LEDGER_NAME, CentralDPLedger, federation_id

NODES = "13,2,7"


def config(budget: float = 0.0, sigma: float = 1.0, **options) -> RunConfig:
    return RunConfig(
        central_dp="server",
        central_dp_noise_multiplier=sigma,
        central_dp_epsilon_budget=budget,
        allowed_nodes=options.pop("allowed_nodes", NODES),
        **options,
    )


def test_epsilon_composes_across_runs_of_one_federation(tmp_path):
    first, second = CentralDPLedger(tmp_path, config()), CentralDPLedger(tmp_path, config())
    for server_round in (1, 2, 3):
        assert first.charge("run-a", server_round) == ""
    assert second.charge("run-b", 1) == ""
    # Four releases in all: the second run starts where the first left the federation.
    assert second.epsilon == pytest.approx(site_level_epsilon(config(), 4))
    assert first.epsilon == pytest.approx(site_level_epsilon(config(), 3))
    other = CentralDPLedger(tmp_path, config(allowed_nodes="1,2"))
    assert other.charge("run-c", 1) == ""
    assert other.epsilon == pytest.approx(site_level_epsilon(config(), 1))


def test_mixed_noise_multipliers_compose_with_opacus(tmp_path):
    CentralDPLedger(tmp_path, config(sigma=2.0)).charge("run-a", 1)
    ledger = CentralDPLedger(tmp_path, config(sigma=0.8))
    ledger.charge("run-b", 1)
    independent = RDPAccountant()
    independent.history = [(2.0, 1.0, 1), (0.8, 1.0, 1)]
    assert ledger.epsilon == pytest.approx(independent.get_epsilon(1e-5))
    assert ledger.spent() == pytest.approx(ledger.epsilon)


def test_a_round_past_the_budget_is_refused_and_not_recorded(tmp_path):
    budget = (site_level_epsilon(config(), 3) + site_level_epsilon(config(), 4)) / 2
    ledger = CentralDPLedger(tmp_path, config(budget=budget))
    assert [ledger.charge("run-a", r) for r in (1, 2, 3)] == ["", "", ""]
    reason = ledger.charge("run-a", 4)
    assert "round 4" in reason and "central-dp-epsilon-budget" in reason
    assert f"'{federation_id(config())}'" in reason
    assert len((tmp_path / LEDGER_NAME).read_text().splitlines()) == 3
    # A later run of the same federation is stopped before its first round.
    assert CentralDPLedger(tmp_path, config(budget=budget)).charge("run-b", 1)
    assert ledger.spent() <= budget


def test_no_budget_records_every_round(tmp_path):
    ledger = CentralDPLedger(tmp_path, config())
    assert all(ledger.charge("run-a", r) == "" for r in range(1, 21))
    entries = ledger.entries()
    assert [e["round"] for e in entries] == list(range(1, 21))
    assert entries[-1]["epsilon"] == pytest.approx(site_level_epsilon(config(), 20))


def test_an_edited_ledger_is_refused(tmp_path):
    ledger = CentralDPLedger(tmp_path, config())
    ledger.charge("run-a", 1)
    ledger.charge("run-a", 2)
    path = tmp_path / LEDGER_NAME
    lines = path.read_text().splitlines()
    first = json.loads(lines[0])
    first["noise_multiplier"] = 100.0  # pretend the round cost nothing
    path.write_text("\n".join([json.dumps(first), lines[1]]) + "\n")
    with pytest.raises(LedgerError, match="hash chain broken"):
        ledger.charge("run-a", 3)
    path.write_text(lines[1] + "\n")  # dropping the first entry breaks the chain too
    with pytest.raises(LedgerError, match=":1: hash chain broken"):
        ledger.spent()


def test_federation_names():
    assert federation_id(config()) == "nodes:2,7,13"
    assert federation_id(config(allowed_nodes="", sites_dir="/x/sites")) == "sites:/x/sites"
    assert federation_id(config(allowed_nodes="")) == "default"


def _charge_rounds(directory: str, budget: float, rounds: int, run_id: str) -> int:
    ledger = CentralDPLedger(directory, config(budget=budget))
    return sum(ledger.charge(run_id, r) == "" for r in range(1, rounds + 1))


def test_concurrent_runs_never_pass_the_budget(tmp_path):
    budget = site_level_epsilon(config(), 6) + 0.01  # room for six rounds in all
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        granted = pool.starmap(
            _charge_rounds,
            [(str(tmp_path), budget, 5, "run-a"), (str(tmp_path), budget, 5, "run-b")],
        )
    assert sum(granted) == 6
    ledger = CentralDPLedger(tmp_path, config(budget=budget))
    assert len(ledger.entries()) == 6 and ledger.spent() <= budget
