"""A label model: combine labeling functions' votes, weighting each by its accuracy.

Each function votes for one class or abstains. The model (one-coin Dawid-Skene) says
a function that votes is right with probability ``accuracy_j`` and otherwise names
one of the other classes at random; it learns the accuracies and the class prior
from how the functions agree and disagree, without any true label, by expectation
maximisation. A function that agrees with the others where they overlap earns a
high accuracy; one that contradicts them a low one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

ABSTAIN = -1
# Beta pseudo-counts that keep an accuracy off 0 and 1 when a function barely overlaps.
_PRIOR_RIGHT, _PRIOR_WRONG = 2.0, 1.0


@dataclass
class LabelModel:
    """Learns each labeling function's accuracy and the class prior from their votes.

    Parameters
    ----------
    num_classes : number of classes (votes are class indices, ``ABSTAIN`` = -1).
    iterations : most EM iterations.
    tolerance : stop when no accuracy moves more than this.
    """

    num_classes: int
    iterations: int = 200
    tolerance: float = 1e-6
    accuracies: np.ndarray = field(default_factory=lambda: np.empty(0))
    prior: np.ndarray = field(default_factory=lambda: np.empty(0))

    def fit(self, votes: np.ndarray) -> LabelModel:
        """Estimate accuracies and prior from ``votes`` (rows x functions)."""
        votes = np.asarray(votes, dtype=np.int64)
        voted = votes != ABSTAIN
        self.accuracies = np.full(votes.shape[1], 0.7)
        self.prior = np.full(self.num_classes, 1.0 / self.num_classes)
        covered = voted.any(axis=1)
        if not covered.any():
            return self
        for _ in range(self.iterations):
            posterior = self.predict_proba(votes[covered])
            agreed = np.where(
                voted[covered], np.take_along_axis(posterior, votes[covered].clip(0), axis=1), 0.0
            )
            updated = (agreed.sum(axis=0) + _PRIOR_RIGHT) / (
                voted[covered].sum(axis=0) + _PRIOR_RIGHT + _PRIOR_WRONG
            )
            self.prior = (posterior.sum(axis=0) + 1.0) / (posterior.shape[0] + self.num_classes)
            moved = np.abs(updated - self.accuracies).max()
            self.accuracies = updated
            if moved < self.tolerance:
                break
        return self

    def predict_proba(self, votes: np.ndarray) -> np.ndarray:
        """Posterior class probabilities per row (the prior where no function votes)."""
        votes = np.asarray(votes, dtype=np.int64)
        voted = (votes != ABSTAIN)[:, :, None]
        chosen = votes[:, :, None] == np.arange(self.num_classes)[None, None, :]
        right = np.log(self.accuracies)[None, :, None]
        wrong = np.log((1 - self.accuracies) / max(self.num_classes - 1, 1))[None, :, None]
        log_post = np.log(self.prior)[None, :] + (voted * np.where(chosen, right, wrong)).sum(1)
        log_post -= log_post.max(axis=1, keepdims=True)
        posterior = np.exp(log_post)
        return posterior / posterior.sum(axis=1, keepdims=True)

    def predict(self, votes: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """(class index or ABSTAIN, confidence) per row.

        A row no function votes on, or whose confidence is under ``threshold``,
        stays unlabeled (ABSTAIN).
        """
        votes = np.asarray(votes, dtype=np.int64)
        posterior = self.predict_proba(votes)
        confidence = posterior.max(axis=1)
        labels = posterior.argmax(axis=1)
        keep = (votes != ABSTAIN).any(axis=1) & (confidence >= threshold)
        return np.where(keep, labels, ABSTAIN), confidence


def vote_summary(votes: np.ndarray) -> dict[str, np.ndarray]:
    """Per function: coverage, overlaps and conflicts, as shares of all rows.

    overlap: the function votes and another one too; conflict: another one votes
    for a different class.
    """
    votes = np.asarray(votes, dtype=np.int64)
    voted = votes != ABSTAIN
    others = voted.sum(axis=1, keepdims=True) - voted
    n = max(votes.shape[0], 1)
    conflicts = np.zeros(votes.shape[1])
    for j in range(votes.shape[1]):  # per function, over whole columns
        differ = voted & (votes != votes[:, [j]])
        conflicts[j] = (voted[:, j] & differ.any(axis=1)).sum() / n
    return {
        "coverage": voted.sum(axis=0) / n,
        "overlaps": (voted & (others > 0)).sum(axis=0) / n,
        "conflicts": conflicts,
    }
