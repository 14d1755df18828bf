"""Membership inference against a trained model, and the privacy it proves was lost.

The attack is the loss threshold of Yeom et al. (CSF 2018): a canary whose loss under
the model is low is guessed to have been trained on. Its AUC over member and
non-member canaries measures how well it separates them (0.5: not at all).

The empirical epsilon lower bound follows Jagielski, Ullman and Oprea, "Auditing
Differentially Private Machine Learning: How Private is Private SGD?" (NeurIPS
2020), as also used by Nasr et al. (IEEE S&P 2021): for an (epsilon, delta)-DP
mechanism any test satisfies ``FPR + exp(epsilon) * FNR >= 1 - delta`` (and with
FPR and FNR swapped), so with Clopper-Pearson upper bounds on both rates

    epsilon >= max(log((1 - delta - FPR_ub) / FNR_ub), log((1 - delta - FNR_ub) / FPR_ub)).

The threshold is chosen on one half of the canaries and the rates are counted on
the other half, so picking the best threshold does not inflate the bound; the two
upper bounds hold jointly with ``confidence`` (Bonferroni). Caveat: the canaries are
trained in one run, not in independent runs as the bound assumes; Steinke, Nasr and
Jagielski (NeurIPS 2023) show such one-run audits are sound with a different,
more conservative analysis, which this does not implement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import beta
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class AttackResult:
    """What the attack achieved.

    Parameters
    ----------
    auc : ROC AUC of the loss-threshold attack over all canaries.
    epsilon_lower_bound : the empirical epsilon it proves (0 when it proves nothing).
    threshold : the loss threshold chosen on the calibration half.
    false_positives, false_negatives, negatives, positives : counts on the audit half.
    """

    auc: float
    epsilon_lower_bound: float
    threshold: float
    false_positives: int
    false_negatives: int
    negatives: int
    positives: int


def clopper_pearson_upper(failures: int, trials: int, confidence: float) -> float:
    """One-sided upper confidence bound of a binomial rate."""
    if failures >= trials:
        return 1.0
    return float(beta.ppf(confidence, failures + 1, trials - failures))


def epsilon_bound(
    fp: int, negatives: int, fn: int, positives: int, delta: float, confidence: float
) -> float:
    """Jagielski et al.'s epsilon lower bound from counts, jointly at ``confidence``."""
    each = 1 - (1 - confidence) / 2
    fpr = clopper_pearson_upper(fp, negatives, each)
    fnr = clopper_pearson_upper(fn, positives, each)
    bounds = [0.0]
    for rate, other in ((fpr, fnr), (fnr, fpr)):
        if other > 0 and 1 - delta - rate > 0:
            bounds.append(math.log((1 - delta - rate) / other))
    return max(bounds)


def loss_threshold_attack(
    losses: np.ndarray,
    members: np.ndarray,
    delta: float,
    seed: int = 0,
    confidence: float = 0.95,
) -> AttackResult:
    """Attack canaries by their loss; bound epsilon on a half not used to pick the threshold.

    Parameters
    ----------
    losses : per-canary loss under the final model.
    members : True where the canary was trained on.
    delta : the delta of the privacy claim being audited.
    seed : splits the canaries into calibration and audit halves.
    confidence : joint confidence of the Clopper-Pearson bounds.
    """
    members = np.asarray(members, dtype=bool)
    scores = -np.asarray(losses, dtype=float)
    auc = float(roc_auc_score(members, scores))
    halves = np.random.default_rng(seed).permutation(len(scores)) % 2 == 0
    calibrate, audit = halves, ~halves

    def counts(mask: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
        guess = scores[mask] >= threshold
        truth = members[mask]
        return (
            int((guess & ~truth).sum()),
            int((~truth).sum()),
            int((~guess & truth).sum()),
            int(truth.sum()),
        )

    candidates = np.unique(scores[calibrate])
    best = max(
        candidates,
        key=lambda t: epsilon_bound(*counts(calibrate, t), delta=delta, confidence=confidence),
    )
    fp, negatives, fn, positives = counts(audit, best)
    bound = epsilon_bound(fp, negatives, fn, positives, delta, confidence)
    return AttackResult(auc, bound, float(-best), fp, fn, negatives, positives)
