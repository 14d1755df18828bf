"""The coordinator's central-DP ledger: across runs, a budget, a chain, one writer at a time."""

from __future__ import annotations

import json
import multiprocessing

import pytest
from opacus.accountants import RDPAccountant

from common.errors import LedgerError
from common.run_config import RunConfig
from server.central_dp import (
    round_noise_multiplier,
    site_level_epsilon,
    worst_noise_multiplier,
)
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


def rounds_epsilon(rounds: int) -> float:
    """Epsilon of ``rounds`` rounds at the full noise multiplier."""
    return site_level_epsilon(config(), [config().central_dp_noise_multiplier] * rounds)


def release(ledger: CentralDPLedger, run_id: str, server_round: int, sigma: float = 1.0) -> str:
    """One round as the coordinator runs it: reserve at the worst, settle at ``sigma``."""
    stopped, reservation = ledger.reserve(run_id, server_round, sigma)
    if not stopped:
        ledger.settle(reservation, sigma)
    return stopped


def test_epsilon_composes_across_runs_of_one_federation(tmp_path):
    first, second = CentralDPLedger(tmp_path, config()), CentralDPLedger(tmp_path, config())
    for server_round in (1, 2, 3):
        assert release(first, "run-a", server_round) == ""
    assert release(second, "run-b", 1) == ""
    # Four releases in all: the second run starts where the first left the federation.
    assert second.epsilon == pytest.approx(rounds_epsilon(4))
    assert first.epsilon == pytest.approx(rounds_epsilon(3))
    other = CentralDPLedger(tmp_path, config(allowed_nodes="1,2"))
    assert release(other, "run-c", 1) == ""
    assert other.epsilon == pytest.approx(rounds_epsilon(1))


def test_a_round_counts_at_its_worst_until_settled_at_its_real_noise(tmp_path):
    run = config(min_train_sites=2)
    worst = worst_noise_multiplier(run, expected=5)
    assert worst == pytest.approx(0.4)  # 2 of 5 answered: the mean moves by C/2, noise C/5
    assert round_noise_multiplier(run, 5, 4) == pytest.approx(0.8)
    ledger = CentralDPLedger(tmp_path, run)
    _, reservation = ledger.reserve("run-a", 1, worst)
    assert ledger.spent() == pytest.approx(opacus_epsilon([(worst, 1)]))  # a crash now
    assert ledger.settle(reservation, 0.8) == pytest.approx(opacus_epsilon([(0.8, 1)]))
    assert ledger.spent() == pytest.approx(ledger.epsilon)
    _, nothing = ledger.reserve("run-a", 2, worst)
    ledger.settle(nothing, None)  # the round released nothing
    assert ledger.spent() == pytest.approx(opacus_epsilon([(0.8, 1)]))
    with pytest.raises(LedgerError, match="no reservation"):
        ledger.settle("0" * 64, 1.0)


def opacus_epsilon(history: list[tuple[float, int]]) -> float:
    accountant = RDPAccountant()
    accountant.history = [(sigma, 1.0, rounds) for sigma, rounds in history]
    return accountant.get_epsilon(1e-5)


def test_mixed_noise_multipliers_compose_with_opacus(tmp_path):
    release(CentralDPLedger(tmp_path, config(sigma=2.0)), "run-a", 1, 2.0)
    ledger = CentralDPLedger(tmp_path, config(sigma=0.8))
    release(ledger, "run-b", 1, 0.8)
    assert ledger.epsilon == pytest.approx(opacus_epsilon([(2.0, 1), (0.8, 1)]))
    assert ledger.spent() == pytest.approx(ledger.epsilon)


def test_a_round_past_the_budget_is_refused_and_not_recorded(tmp_path):
    budget = (rounds_epsilon(3) + rounds_epsilon(4)) / 2
    ledger = CentralDPLedger(tmp_path, config(budget=budget))
    assert [release(ledger, "run-a", r) for r in (1, 2, 3)] == ["", "", ""]
    reason = release(ledger, "run-a", 4)
    assert "round 4" in reason and "central-dp-epsilon-budget" in reason
    assert f"'{federation_id(config())}'" in reason
    assert len((tmp_path / LEDGER_NAME).read_text().splitlines()) == 6
    # A later run of the same federation is stopped before its first round.
    assert release(CentralDPLedger(tmp_path, config(budget=budget)), "run-b", 1)
    assert ledger.spent() <= budget


def test_no_budget_records_every_round(tmp_path):
    ledger = CentralDPLedger(tmp_path, config())
    assert all(release(ledger, "run-a", r) == "" for r in range(1, 21))
    entries = ledger.entries()
    assert [e["round"] for e in entries if e["kind"] == "reserve"] == list(range(1, 21))
    assert entries[-1]["epsilon"] == pytest.approx(rounds_epsilon(20))


def test_an_edited_ledger_is_refused(tmp_path):
    ledger = CentralDPLedger(tmp_path, config())
    release(ledger, "run-a", 1)
    path = tmp_path / LEDGER_NAME
    lines = path.read_text().splitlines()
    settle = json.loads(lines[1])
    settle["noise_multiplier"] = 100.0  # pretend the round cost nothing
    path.write_text("\n".join([lines[0], json.dumps(settle)]) + "\n")
    with pytest.raises(LedgerError, match=":2: hash chain broken"):
        release(ledger, "run-a", 2)
    path.write_text(lines[1] + "\n")  # dropping the first entry breaks the chain too
    with pytest.raises(LedgerError, match=":1: hash chain broken"):
        ledger.spent()


def test_federation_names():
    assert federation_id(config()) == "nodes:2,7,13"
    assert federation_id(config(allowed_nodes="", sites_dir="/x/sites")) == "sites:/x/sites"
    assert federation_id(config(allowed_nodes="")) == "default"


def _charge_rounds(directory: str, budget: float, rounds: int, run_id: str) -> int:
    ledger = CentralDPLedger(directory, config(budget=budget))
    return sum(release(ledger, run_id, r) == "" for r in range(1, rounds + 1))


def test_concurrent_runs_never_pass_the_budget(tmp_path):
    budget = rounds_epsilon(6) + 0.01  # room for six rounds in all
    runs = [(str(tmp_path), budget, 5, "run-a"), (str(tmp_path), budget, 5, "run-b")]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        granted = pool.starmap(_charge_rounds, runs)
    assert sum(granted) == 6
    ledger = CentralDPLedger(tmp_path, config(budget=budget))
    assert ledger.spent() <= budget
