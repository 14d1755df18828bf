"""The site's privacy ledger: every DP step it ever took, composed by Opacus.

The ledger, not the server, decides whether a site may train: before each round the
site composes its whole history plus the planned steps with Opacus's accountant and
refuses if the result would pass its budget. The noise multiplier of a run is chosen
once, for the steps the whole run will really take, and cached in the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np

from client.privacy.ledger_chain import LedgerChain
from client.privacy.rdp_analysis import rdp_analysis
from common.config import MAX_EPSILON_BUDGET
from common.errors import BudgetExceededError, StoreError
from common.rdp_orders import RDP_ORDERS

# Noise multipliers searched when planning a run. Above the top the updates are
# noise, so a site whose budget left only allows more refuses instead of training.
_SIGMA_LOW, _SIGMA_HIGH = 0.1, 50.0
# PRV's numerical domain grows with the privacy loss: a history RDP puts near epsilon
# 10^3 (noise 0.1 at rate 0.005 over 3000 steps, as a sigma search may probe) made
# Opacus's PRV take 24 GiB and be killed. RDP's epsilon is a valid upper bound too,
# and past the largest budget a policy allows it decides nothing differently, so PRV
# only refines histories below that.
PRV_ABOVE_RDP_EPSILON = MAX_EPSILON_BUDGET
# The mechanisms of a training round (the others release statistics).
TRAINING = frozenset({"dp-sgd", "no-dp"})


@dataclass(frozen=True)
class LedgerEntry:
    """DP-SGD steps taken in one round (or a non-private release, noise 0).

    Parameters
    ----------
    noise_multiplier : Gaussian noise std / clipping bound; 0 means no DP at all.
    sample_rate : Poisson sampling rate of each step.
    steps : number of steps at that rate.
    delta : the site's delta when the steps were taken.
    run_id, round, table_version : which run, round and data version they trained.
    mechanism : what released information ('dp-sgd', 'no-dp', 'gaussian-moments').
    """

    noise_multiplier: float
    sample_rate: float
    steps: int
    delta: float
    run_id: str
    round: int
    table_version: int
    mechanism: str = "dp-sgd"
    time: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def __post_init__(self) -> None:
        if self.noise_multiplier < 0 or not 0 < self.sample_rate <= 1 or self.steps < 0:
            raise StoreError(f"invalid ledger entry: {self}")


class PrivacyLedger:
    """Append-only JSON-lines ledger under ``<store>/privacy``.

    Parameters
    ----------
    store_dir : the site's store directory.
    accountant : Opacus accountant that composes the history ('rdp' or 'prv').
    """

    def __init__(self, store_dir: Path, accountant: str = "rdp") -> None:
        self.dir = Path(store_dir) / "privacy"
        self.chain = LedgerChain(Path(store_dir))
        self.path = self.chain.path
        self.plans_path = self.dir / "plans.json"
        self.lock_path = self.chain.chain.lock_path
        self.accountant = accountant

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the site's budget while checking it and recording what was spent.

        Two runs at one site (or a run and a release) would otherwise both pass the
        check before either records, and together spend past the budget. The lock
        is the operating system's (``flock``): a crashed holder releases it.
        """
        with self.chain.chain.locked():  # the chain's own lock: its append will not retake it
            yield

    def entries(self) -> list[LedgerEntry]:
        """Every release, read from the chain (a damaged or rolled-back one raises)."""
        releases = self.chain.releases()  # its own one-line StoreError names the file
        try:
            return [LedgerEntry(**fields) for fields in releases]
        except (TypeError, ValueError) as error:
            raise StoreError(f"{self.path}: privacy ledger is corrupt ({error})") from None

    def trained(self, run_id: str, server_round: int) -> bool:
        """Whether the ledger holds the training of ``run_id``'s round ``server_round``."""
        return any(
            e.run_id == run_id and e.round == server_round and e.mechanism in TRAINING
            for e in self.entries()
        )

    def record(self, entry: LedgerEntry) -> None:
        """Append ``entry`` durably (fsync) before the update leaves the site."""
        self.chain.append(asdict(entry))

    def epsilon(self, delta: float, planned: Sequence[tuple[float, float, int]] = ()) -> float:
        """Epsilon of the whole history plus ``planned`` (sigma, rate, steps) steps."""
        history = [(e.noise_multiplier, e.sample_rate, e.steps) for e in self.entries()]
        return compose_epsilon([*history, *planned], delta, self.accountant)

    def plan_noise(
        self, run_id: str, budget: float, delta: float, sample_rate: float, steps: int
    ) -> float:
        """Noise multiplier that spends at most ``budget`` over ``steps`` more steps.

        Computed once per run, for the steps the whole run will take, and cached in
        the store; later rounds of the run reuse it. A changed sample rate (new data
        mid-run) plans again for the steps left.
        """
        plans = self._plans()
        plan = plans.get(run_id)
        if plan is None or plan["sample_rate"] != sample_rate:
            sigma = self._search_sigma(budget, delta, sample_rate, steps)
            plan = {"sigma": sigma, "sample_rate": sample_rate, "steps": steps, "budget": budget}
            plans[run_id] = plan
            self._save_plans(plans)
        return plan["sigma"]

    def _search_sigma(self, budget: float, delta: float, rate: float, steps: int) -> float:
        spent = self.epsilon(delta)
        if spent >= budget:
            raise BudgetExceededError(f"privacy budget {budget} already spent ({spent:.3f})")
        if self.epsilon(delta, [(_SIGMA_HIGH, rate, steps)]) > budget:
            raise BudgetExceededError(
                f"privacy budget: {steps} steps at sample rate {rate:.3g} cannot fit in the "
                f"{budget - spent:.3f} left of {budget} (even at noise multiplier {_SIGMA_HIGH:g})"
            )
        history = [(e.noise_multiplier, e.sample_rate, e.steps) for e in self.entries()]
        return _least_noise(
            lambda sigma: compose_epsilon([*history, (sigma, rate, steps)], delta, self.accountant),
            budget,
        )

    def _plans(self) -> dict[str, dict]:
        if not self.plans_path.exists():
            return {}
        try:
            return json.loads(self.plans_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            return {}  # a plan is a cache: recompute rather than fail

    def _save_plans(self, plans: dict[str, dict]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        temporary = self.plans_path.with_suffix(".tmp")
        temporary.write_text(json.dumps(plans, indent=1), encoding="utf-8")
        temporary.replace(self.plans_path)


def release_noise(epsilon: float, delta: float, accountant: str = "rdp") -> float:
    """Least noise multiplier at which one release over all rows costs at most ``epsilon``.

    The release is one Gaussian step at sample rate 1, composed alone by ``accountant``.
    """

    def released(sigma: float) -> float:
        return compose_epsilon([(sigma, 1.0, 1)], delta, accountant)

    if epsilon <= 0 or released(_SIGMA_HIGH) > epsilon:
        raise BudgetExceededError(
            f"privacy budget: a release cannot cost only epsilon {max(epsilon, 0):.3g} "
            f"(even at noise multiplier {_SIGMA_HIGH:g})"
        )
    return _least_noise(released, epsilon)


def _least_noise(epsilon_at: Callable[[float], float], budget: float) -> float:
    """The least noise multiplier (to 0.1 %) whose ``epsilon_at`` is within ``budget``;
    the top of the searched range must be within it.

    Epsilon falls smoothly as the noise grows, so regula falsi on their logarithms
    (the Illinois variant, which moves both ends of the bracket) takes 7-8 evaluations
    where bisection takes 13, and each evaluation composes a whole RDP curve.
    """

    def excess(log_sigma: float) -> float:
        epsilon = epsilon_at(math.exp(log_sigma))
        return math.log(epsilon / budget) if epsilon > 0 else -math.inf

    tolerance = math.log1p(1e-3)
    low, high = math.log(_SIGMA_LOW), math.log(_SIGMA_HIGH)
    excess_low, excess_high = excess(low), excess(high)
    if excess_low <= 0:
        return _SIGMA_LOW
    moved = ""
    while high - low > tolerance:
        if math.isfinite(excess_low) and excess_low != excess_high:
            point = high - excess_high * (high - low) / (excess_high - excess_low)
        else:
            point = (low + high) / 2
        point = min(max(point, low + tolerance / 2), high - tolerance / 2)
        value = excess(point)
        if value <= 0:
            high, excess_high = point, value
            if moved == "high":  # the low end stayed put twice: halve its weight
                excess_low /= 2
            moved = "high"
        else:
            low, excess_low = point, value
            if moved == "low":
                excess_high /= 2
            moved = "low"
    return math.exp(high)


def compose_epsilon(
    history: list[tuple[float, float, int]], delta: float, accountant: str = "rdp"
) -> float:
    """Compose (sigma, rate, steps) steps with an Opacus accountant; inf if any had no noise."""
    steps = [(s, q, n) for s, q, n in history if n > 0]
    if not steps:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in steps):
        return math.inf
    # Steps at the same (sigma, rate) compose additively: merging them is exact and
    # keeps the cost flat however long the history grows.
    merged: dict[tuple[float, float], int] = {}
    for sigma, rate, count in steps:
        merged[(sigma, rate)] = merged.get((sigma, rate), 0) + count
    # Opacus's RDP analysis, with each (sigma, rate)'s per-step RDP computed once per
    # process: RDP is linear in the steps, and the per-step curve is what costs (every
    # site checks its epsilon before and after each round).
    rdp = sum(count * _rdp_per_step(sigma, rate) for (sigma, rate), count in merged.items())
    rdp_epsilon, _ = rdp_analysis().get_privacy_spent(orders=list(RDP_ORDERS), rdp=rdp, delta=delta)
    if accountant == "rdp" or rdp_epsilon > PRV_ABOVE_RDP_EPSILON:
        return float(rdp_epsilon)
    history_key = tuple(sorted((sigma, rate, count) for (sigma, rate), count in merged.items()))
    return _composed_epsilon(history_key, delta, accountant)


# A site asks twice per round for the same history (the projection before training and
# the record after it), and a PRV composition takes 0.1-0.3 s where RDP's takes 0.02 ms.
@lru_cache(maxsize=1024)
def _composed_epsilon(
    history: tuple[tuple[float, float, int], ...], delta: float, accountant: str
) -> float:
    from opacus.accountants import create_accountant

    composer = create_accountant(accountant)
    composer.history = list(history)
    return float(composer.get_epsilon(delta=delta))


@lru_cache(maxsize=4096)
def _rdp_per_step(sigma: float, rate: float) -> np.ndarray:
    curve = rdp_analysis().compute_rdp(
        q=rate, noise_multiplier=sigma, steps=1, orders=list(RDP_ORDERS)
    )
    curve.setflags(write=False)
    return curve
