"""The privacy ledger composes its history with Opacus and plans noise within budget."""

from __future__ import annotations

import json
import math

import pytest
from opacus.accountants import PRVAccountant, RDPAccountant

from client.privacy.ledger import PRV_ABOVE_RDP_EPSILON, LedgerEntry, PrivacyLedger, compose_epsilon
from common.audit import AuditLog
from common.errors import BudgetExceededError, StoreError

DELTA = 1e-5


def entry(sigma: float, rate: float, steps: int, round_: int = 1, run_id: str = "run-1"):
    return LedgerEntry(
        noise_multiplier=sigma,
        sample_rate=rate,
        steps=steps,
        delta=DELTA,
        run_id=run_id,
        round=round_,
        table_version=0,
    )


def stepped_rdp(history: list[tuple[float, float, int]]) -> float:
    """Epsilon of the same steps, taken one by one through Opacus's RDP accountant."""
    accountant = RDPAccountant()
    for sigma, rate, steps in history:
        for _ in range(steps):
            accountant.step(noise_multiplier=sigma, sample_rate=rate)
    return accountant.get_epsilon(delta=DELTA)


def test_epsilon_of_an_empty_ledger_is_zero(tmp_path):
    assert PrivacyLedger(tmp_path).epsilon(DELTA) == 0.0


def test_recorded_steps_compose_like_opacus(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    history = [(1.1, 0.1, 20), (0.9, 0.05, 30), (2.0, 0.2, 10)]
    for round_, (sigma, rate, steps) in enumerate(history, start=1):
        ledger.record(entry(sigma, rate, steps, round_))

    assert len(ledger.entries()) == 3
    assert ledger.entries()[1].steps == 30
    assert ledger.epsilon(DELTA) == pytest.approx(stepped_rdp(history), rel=1e-9)


def test_ledger_survives_reopening(tmp_path):
    PrivacyLedger(tmp_path).record(entry(1.0, 0.1, 50))

    reopened = PrivacyLedger(tmp_path)

    assert reopened.epsilon(DELTA) == pytest.approx(stepped_rdp([(1.0, 0.1, 50)]), rel=1e-9)


def test_merged_history_gives_the_same_epsilon_as_unmerged(tmp_path):
    # The same (sigma, rate) in rounds that are not adjacent: the ledger merges them.
    history = [(1.0, 0.1, 15), (1.5, 0.2, 5), (1.0, 0.1, 25), (1.5, 0.2, 7)]
    unmerged = RDPAccountant()
    unmerged.history = list(history)

    assert compose_epsilon(history, DELTA) == pytest.approx(
        unmerged.get_epsilon(delta=DELTA), rel=1e-9
    )
    assert compose_epsilon(history, DELTA) == pytest.approx(stepped_rdp(history), rel=1e-9)


def test_more_steps_spend_more_epsilon(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(1.0, 0.1, 10))
    before = ledger.epsilon(DELTA)

    after = ledger.epsilon(DELTA, [(1.0, 0.1, 10)])

    assert 0 < before < after


def test_plan_noise_spends_nearly_all_of_the_budget(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(1.2, 0.05, 40))
    budget, rate, steps = 4.0, 0.1, 60

    sigma = ledger.plan_noise("run-2", budget, DELTA, rate, steps)

    spent = ledger.epsilon(DELTA, [(sigma, rate, steps)])
    assert 0.97 * budget <= spent <= budget
    assert spent == pytest.approx(stepped_rdp([(1.2, 0.05, 40), (sigma, rate, steps)]), rel=1e-9)


def test_plan_noise_is_cached_per_run(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    sigma = ledger.plan_noise("run-1", 3.0, DELTA, 0.1, 50)

    again = PrivacyLedger(tmp_path).plan_noise("run-1", 3.0, DELTA, 0.1, 500)

    assert again == sigma
    plans = json.loads((tmp_path / "privacy" / "plans.json").read_text())
    assert plans["run-1"]["sigma"] == sigma
    assert plans["run-1"]["steps"] == 50
    # Another run plans for its own steps: more steps need more noise.
    assert ledger.plan_noise("run-2", 3.0, DELTA, 0.1, 500) > sigma


def test_plan_noise_replans_when_the_sample_rate_changes(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    sigma = ledger.plan_noise("run-1", 3.0, DELTA, 0.1, 50)

    replanned = ledger.plan_noise("run-1", 3.0, DELTA, 0.2, 50)

    assert replanned > sigma
    assert json.loads(ledger.plans_path.read_text())["run-1"]["sample_rate"] == 0.2


def test_spent_budget_refuses_to_plan(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(0.5, 0.5, 200))
    assert ledger.epsilon(DELTA) > 3.0

    with pytest.raises(BudgetExceededError):
        ledger.plan_noise("run-2", 3.0, DELTA, 0.1, 10)


def test_no_dp_entry_makes_epsilon_infinite(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(1.0, 0.1, 10))
    ledger.record(LedgerEntry(0.0, 1.0, 1, DELTA, "run-1", 2, 0, mechanism="no-dp"))

    assert math.isinf(ledger.epsilon(DELTA))
    with pytest.raises(BudgetExceededError):
        ledger.plan_noise("run-2", 100.0, DELTA, 0.1, 10)


def test_zero_step_entries_cost_nothing(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(0.0, 0.1, 0))

    assert ledger.epsilon(DELTA) == 0.0


@pytest.mark.parametrize(
    "line",
    [
        "{not json",
        '{"noise_multiplier": 1.0}',
        json.dumps({**vars(entry(1.0, 0.1, 1)), "sample_rate": 2.0}),
    ],
)
def test_corrupt_ledger_raises_store_error(tmp_path, line):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(1.0, 0.1, 5))
    with open(ledger.path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")

    with pytest.raises(StoreError, match="ledger.jsonl"):
        ledger.epsilon(DELTA)


def test_invalid_entries_are_refused():
    with pytest.raises(StoreError):
        entry(-1.0, 0.1, 5)
    with pytest.raises(StoreError):
        entry(1.0, 0.0, 5)


def test_prv_accountant_is_close_to_opacus_and_tighter_than_rdp(tmp_path):
    ledger = PrivacyLedger(tmp_path, accountant="prv")
    history = [(1.0, 0.1, 30), (1.5, 0.1, 20)]
    for sigma, rate, steps in history:
        ledger.record(entry(sigma, rate, steps))
    reference = PRVAccountant()
    reference.history = list(history)

    epsilon = ledger.epsilon(DELTA)

    assert epsilon == pytest.approx(reference.get_epsilon(delta=DELTA), rel=0.05)
    assert 0 < epsilon <= stepped_rdp(history)


def test_prv_leaves_histories_past_every_budget_to_rdp():
    # Where RDP's bound passes the largest budget, PRV's domain can need tens of GiB
    # (noise 0.1, rate 0.005, 3000 steps: 24 GiB); RDP's bound answers instead.
    # Below it, PRV still refines (the test above).
    hopeless = [(0.5, 1.0, 30)]  # RDP ~111, PRV ~106: cheap to compute either way
    reference = PRVAccountant()
    reference.history = list(hopeless)
    assert reference.get_epsilon(delta=DELTA) < stepped_rdp(hopeless)

    epsilon = compose_epsilon(hopeless, DELTA, "prv")

    assert epsilon > PRV_ABOVE_RDP_EPSILON
    assert epsilon == pytest.approx(stepped_rdp(hopeless), rel=1e-3)


def test_prv_composes_a_history_once_however_it_is_ordered(monkeypatch):
    import opacus.accountants

    from client.privacy import ledger

    built = []

    def counting(mechanism: str):
        built.append(mechanism)
        return PRVAccountant()

    monkeypatch.setattr(opacus.accountants, "create_accountant", counting)
    ledger._composed_epsilon.cache_clear()
    history = [(1.0, 0.1, 30), (1.5, 0.1, 20)]

    first = compose_epsilon(history, DELTA, "prv")
    again = compose_epsilon(list(reversed(history)), DELTA, "prv")
    longer = compose_epsilon([*history, (1.0, 0.1, 5)], DELTA, "prv")

    assert built == ["prv", "prv"]
    assert first == again < longer


def test_prv_plan_noise_stays_within_budget(tmp_path):
    ledger = PrivacyLedger(tmp_path, accountant="prv")

    sigma = ledger.plan_noise("run-1", 2.0, DELTA, 0.1, 50)

    assert 0.9 * 2.0 <= ledger.epsilon(DELTA, [(sigma, 0.1, 50)]) <= 2.0


def chained_ledger(tmp_path) -> PrivacyLedger:
    ledger = PrivacyLedger(tmp_path)
    for round_ in (1, 2, 3):
        ledger.record(entry(1.0, 0.1, 50, round_=round_))
    return ledger


def test_a_deleted_ledger_refuses_instead_of_an_empty_budget(tmp_path):
    ledger = chained_ledger(tmp_path)
    assert ledger.epsilon(DELTA) > 0
    ledger.path.unlink()
    (ledger.dir / "ledger-head.json").unlink()

    with pytest.raises(StoreError, match="removed or rolled back"):
        PrivacyLedger(tmp_path).epsilon(DELTA)


def test_a_truncated_ledger_is_refused(tmp_path):
    ledger = chained_ledger(tmp_path)
    lines = ledger.path.read_text().splitlines()
    ledger.path.write_text("\n".join(lines[:-1]) + "\n")

    with pytest.raises(StoreError, match="ledger.jsonl"):
        PrivacyLedger(tmp_path).epsilon(DELTA)


def test_an_edited_noise_multiplier_is_refused(tmp_path):
    ledger = chained_ledger(tmp_path)
    text = ledger.path.read_text()
    assert '"noise_multiplier": 1.0' in text
    ledger.path.write_text(text.replace('"noise_multiplier": 1.0', '"noise_multiplier": 9.0', 1))

    with pytest.raises(StoreError, match="ledger.jsonl"):
        PrivacyLedger(tmp_path).epsilon(DELTA)


def test_a_ledger_rolled_back_to_an_earlier_copy_is_refused(tmp_path):
    ledger = PrivacyLedger(tmp_path)
    ledger.record(entry(1.0, 0.1, 50))
    saved = ledger.path.read_bytes(), (ledger.dir / "ledger-head.json").read_bytes()
    ledger.record(entry(1.0, 0.1, 50, round_=2))
    ledger.path.write_bytes(saved[0])
    (ledger.dir / "ledger-head.json").write_bytes(saved[1])

    with pytest.raises(StoreError, match="removed or rolled back"):
        PrivacyLedger(tmp_path).epsilon(DELTA)


def test_a_removed_audit_log_is_noticed_by_the_ledger(tmp_path):
    chained_ledger(tmp_path)
    for path in (tmp_path / "audit").iterdir():
        path.unlink()

    with pytest.raises(StoreError, match="audit log"):
        PrivacyLedger(tmp_path).epsilon(DELTA)


def test_an_audit_log_rewritten_to_its_old_length_is_noticed_by_the_ledger(tmp_path):
    chained_ledger(tmp_path)
    audit = AuditLog(tmp_path / "audit", "someone")
    length = len(audit.entries())
    audit.path.unlink()
    audit.head_path.unlink()
    for _ in range(length):
        audit.append("note")
    assert audit.verify() is None

    with pytest.raises(StoreError, match="audit log was rewritten"):
        PrivacyLedger(tmp_path).epsilon(DELTA)


def test_a_plain_ledger_of_an_older_site_becomes_the_chain(tmp_path):
    plain = [json.dumps(vars(entry(1.0, 0.1, 50, round_=r))) for r in (1, 2)]
    (tmp_path / "privacy").mkdir()
    (tmp_path / "privacy" / "ledger.jsonl").write_text("\n".join(plain) + "\n")
    before = compose_epsilon([(1.0, 0.1, 100)], DELTA)

    assert PrivacyLedger(tmp_path).epsilon(DELTA) == pytest.approx(before)
    assert (tmp_path / "privacy" / "ledger.jsonl.pre-chain").exists()
