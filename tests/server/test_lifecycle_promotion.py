"""Champion / challenger: the promotion rule, the production/previous aliases, and
refusals (an unevaluated model, nothing to roll back to) that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import PromotionError
from server.lifecycle.challenge import weighted
from server.lifecycle.events import Events
from server.lifecycle.promotion import Aliases, promotion_decision


def _site(champion: float, challenger: float, n: int = 50) -> dict:
    return {
        "champion": {"accuracy": champion, "f1": None, "auc": None, "loss": 0.5},
        "challenger": {"accuracy": challenger, "f1": None, "auc": None, "loss": 0.4},
        "num_examples": n,
    }


def _challenge(tmp_path: Path, name: str, sites: dict, champion: str) -> Path:
    run = tmp_path / name
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"run_id": name}))
    record = {
        "champion": {"run_dir": str(tmp_path / champion), "run_id": champion, "round": 2},
        "challenger": {"run_dir": str(run.resolve()), "run_id": name, "round": 1},
        "sites": sites,
        "federated": {r: weighted(sites, r) for r in ("champion", "challenger")},
    }
    (run / "challenge.json").write_text(json.dumps(record))
    return run


def test_weighted_by_examples() -> None:
    sites = {"a": _site(0.5, 1.0, n=10), "b": _site(1.0, 0.5, n=30)}
    assert weighted(sites, "challenger")["accuracy"] == pytest.approx((10 + 15) / 40)
    assert weighted(sites, "challenger")["f1"] is None


def test_better_everywhere_is_promoted(tmp_path: Path) -> None:
    sites = {"a": _site(0.80, 0.90), "b": _site(0.85, 0.84)}
    run = _challenge(tmp_path, "c1", sites, "root")
    decision = promotion_decision(
        json.loads((run / "challenge.json").read_text()), margin=0.02, tolerance=0.05
    )
    assert decision.promote, decision.reasons
    assert decision.challenger == pytest.approx(0.87)


@pytest.mark.parametrize(
    ("sites", "why"),
    [
        ({"a": _site(0.80, 0.81), "b": _site(0.80, 0.81)}, "is not 0.02 above"),
        (
            {"a": _site(0.70, 0.99), "b": _site(0.90, 0.80)},
            "worse than tolerance 0.05: b accuracy by 0.1000",
        ),
    ],
)
def test_short_margin_or_one_worse_site_is_not_promoted(
    tmp_path: Path, sites: dict, why: str
) -> None:
    run = _challenge(tmp_path, "c1", sites, "root")
    decision = promotion_decision(
        json.loads((run / "challenge.json").read_text()), margin=0.02, tolerance=0.05
    )
    assert not decision.promote
    assert any(why in reason for reason in decision.reasons), decision.reasons


def test_promote_then_rollback(tmp_path: Path) -> None:
    state = tmp_path / "state"
    events = Events(state)
    aliases = Aliases(state)
    first = _challenge(tmp_path, "c1", {"a": _site(0.8, 0.9)}, "root")
    aliases.promote(first, events)
    assert aliases.get("production")["run_dir"] == str(first.resolve())
    assert aliases.get("previous")["run_dir"] == str(tmp_path / "root")
    second = _challenge(tmp_path, "c2", {"a": _site(0.9, 0.95)}, "c1")
    aliases.promote(second, events)
    assert aliases.get("previous")["run_dir"] == str(first.resolve())
    aliases.rollback(events, second)
    assert aliases.get("production")["run_dir"] == str(first.resolve())
    assert aliases.get("previous")["run_dir"] == str(second.resolve())
    kinds = [e["event"] for e in events.read()]
    assert kinds == ["promoted", "promoted", "rolled-back"]
    assert [e["by"] for e in events.read()[:2]] == ["operator", "operator"]
    assert [e["action"] for e in events.audit.entries()] == kinds


def test_unevaluated_model_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    state = tmp_path / "state"
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "run.json").write_text("{}")
    with pytest.raises(PromotionError, match="never evaluated beside a champion") as error:
        Aliases(state).promote(plain, Events(state))
    assert "\n" not in str(error.value)
    assert not (state / "aliases.json").exists()
    assert not (state / "events.jsonl").exists()


def test_rollback_without_previous_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PromotionError, match="no previous model"):
        Aliases(tmp_path).rollback(Events(tmp_path))
    assert not (tmp_path / "events.jsonl").exists()


def test_rollback_of_a_model_that_is_not_production(tmp_path: Path) -> None:
    events = Events(tmp_path / "state")
    aliases = Aliases(tmp_path / "state")
    run = _challenge(tmp_path, "c1", {"a": _site(0.8, 0.9)}, "root")
    aliases.promote(run, events)
    before = aliases.read()
    with pytest.raises(PromotionError, match="is not the production model"):
        aliases.rollback(events, tmp_path / "root")
    assert aliases.read() == before


def _gaps(parity: float) -> dict:
    return {"sex": {"demographic_parity_difference": parity, "equalized_odds_difference": 0.1}}


@pytest.mark.parametrize(("challenger_gap", "promote"), [(0.12, True), (0.30, False)])
def test_a_wider_fairness_gap_holds_the_challenger_back(tmp_path, challenger_gap, promote):
    sites = {"a": _site(0.80, 0.90), "b": _site(0.80, 0.90)}
    run = _challenge(tmp_path, "c1", sites, "root")
    challenge = json.loads((run / "challenge.json").read_text())
    challenge["fairness"] = {
        "champion": {"per_site": {"a": _gaps(0.10), "b": _gaps(0.10)}, "federated": _gaps(0.1)},
        "challenger": {
            "per_site": {"a": _gaps(0.10), "b": _gaps(challenger_gap)},
            "federated": _gaps(0.1),
        },
    }
    decision = promotion_decision(challenge, margin=0.02, tolerance=0.05)
    assert decision.promote is promote, decision.reasons
    if not promote:
        assert "b sex demographic_parity_difference by 0.2000" in decision.reasons[-1]
