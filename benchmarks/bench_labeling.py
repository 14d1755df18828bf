"""Labeling effort on breast cancer: active learning vs random sampling, and weak supervision.

    .venv/bin/python benchmarks/bench_labeling.py [--seeds 0 1 2] [--batch 10]
        [--budget 200] [--out runs/bench_labeling]

Data: scikit-learn's bundled breast-cancer table (569 rows, 30 features), encoded
as every site encodes it (``FeatureSpec`` with the dataset's public ranges, log
scale). Per seed: a stratified 30 % test split; the other rows are the site's
unlabeled pool, whose true labels play the annotator.

* Active learning vs random sampling: both start from the same ``--batch`` random
  labels; each step fits a logistic regression on the labels so far, measures test
  accuracy, and asks for ``--batch`` more: the most uncertain pool rows by entropy
  (``client.labeling.active.select``, the function ``fedlife-site label queue`` ranks with)
  or random ones. ``label_fraction_active_to_match_random`` = the labels active
  learning needed (mean curve over the seeds) to reach random sampling's mean final
  accuracy, as a fraction of random's final label count.
* Weak supervision: four one-feature labeling functions (``common.labeling``), the
  votes and label model ``fedlife-site label functions`` uses (``client.labeling.weak.votes``,
  ``client.labeling.label_model.LabelModel``) label the pool without any hand label; weak
  labels under the confidence threshold stay unlabeled. Reported: their accuracy
  against the truth and coverage, and the test accuracy of a model trained on them,
  against always predicting the majority class.

Prints a table; writes ``labeling.png``; its last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import polars as pl
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from client.labeling.active import select
from client.labeling.label_model import ABSTAIN, LabelModel
from client.labeling.weak import votes
from common.features import FeatureSpec
from common.labeling import LabelingFunction
from simulations.data.datasets import breast_cancer

# sklearn's coding: 0 = malignant, 1 = benign.
FUNCTIONS = [
    LabelingFunction(name="large", when="worst_radius > 18", label="0"),
    LabelingFunction(name="small", when="worst_radius < 13", label="1"),
    LabelingFunction(name="concave", when="worst_concave_points > 0.17", label="0"),
    LabelingFunction(name="smooth", when="worst_concave_points < 0.09", label="1"),
]
CLASSES = ["0", "1"]
THRESHOLD = 0.8


def fit(x: np.ndarray, y: np.ndarray) -> LogisticRegression:
    return LogisticRegression(C=10.0, max_iter=2000).fit(x, y)


def learning_curve(
    x_pool: np.ndarray,
    y_pool: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    strategy: str,
    batch: int,
    budget: int,
    seed: int,
) -> tuple[list[int], list[float]]:
    """Test accuracy after each batch of labels, queried by ``strategy``."""
    rng = np.random.default_rng(seed)
    labeled = _initial(y_pool, batch, rng)
    counts, accuracies = [], []
    while True:
        model = fit(x_pool[labeled], y_pool[labeled])
        counts.append(len(labeled))
        accuracies.append(float(model.score(x_test, y_test)))
        if len(labeled) >= budget:
            return counts, accuracies
        rest = np.setdiff1d(np.arange(len(y_pool)), labeled)
        if strategy == "active":
            picked = rest[select(model.predict_proba(x_pool[rest]), x_pool[rest], batch)]
        else:
            picked = rng.choice(rest, size=batch, replace=False)
        labeled = np.concatenate([labeled, picked])


def _initial(y: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` random rows holding both classes (a first model needs two)."""
    while True:
        chosen = rng.choice(len(y), size=size, replace=False)
        if len(np.unique(y[chosen])) == 2:
            return chosen


def weak_supervision(pool: pl.DataFrame, y_pool: np.ndarray) -> dict[str, float | np.ndarray]:
    """Weak labels of the pool (no hand label): their accuracy, coverage and the labels."""
    every_vote = votes(pool, FUNCTIONS, CLASSES)
    model = LabelModel(len(CLASSES)).fit(every_vote)
    labels, _ = model.predict(every_vote, THRESHOLD)
    covered = labels != ABSTAIN
    return {
        "accuracy": float((labels[covered] == y_pool[covered]).mean()),
        "coverage": float(covered.mean()),
        "labels": labels,
    }


def first_reaching(counts: list[int], curve: np.ndarray, target: float) -> int | None:
    reached = np.flatnonzero(curve >= target - 1e-12)
    return counts[reached[0]] if reached.size else None


def plot(counts, active, random, weak_accuracy, majority, path: Path) -> None:
    figure = Figure(figsize=(7, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, curves in (("active (entropy)", active), ("random", random)):
        mean, std = curves.mean(axis=0), curves.std(axis=0)
        axes.plot(counts, mean, label=name)
        axes.fill_between(counts, mean - std, mean + std, alpha=0.2)
    axes.axhline(weak_accuracy, color="green", linestyle="--", label="weak supervision (0 labels)")
    axes.axhline(majority, color="grey", linestyle=":", label="majority class")
    axes.set_xlabel("hand labels")
    axes.set_ylabel("test accuracy")
    axes.set_title(f"breast cancer, mean ± std over {active.shape[0]} seeds")
    axes.legend(loc="lower right")
    figure.savefig(path, dpi=120, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("runs/bench_labeling"))
    args = parser.parse_args()
    started = time.perf_counter()

    dataset = breast_cancer()
    spec = FeatureSpec(
        dataset.features,
        [dataset.ranges[f][0] for f in dataset.features],
        [dataset.ranges[f][1] for f in dataset.features],
        dataset.label,
        CLASSES,
        [dataset.scales.get(f, "linear") for f in dataset.features],
    )
    x_all, y_all = spec.encode(dataset.frame)
    curves: dict[str, list[list[float]]] = {"active": [], "random": []}
    weak_rows, counts = [], []
    for seed in args.seeds:
        split = train_test_split(
            np.arange(len(y_all)), test_size=0.3, stratify=y_all, random_state=seed
        )
        pool, test = split
        for strategy in curves:
            counts, accuracy = learning_curve(
                x_all[pool], y_all[pool], x_all[test], y_all[test],
                strategy, args.batch, args.budget, seed,
            )  # fmt: skip
            curves[strategy].append(accuracy)
        weak = weak_supervision(dataset.frame[pool], y_all[pool])
        chosen = weak["labels"] != ABSTAIN
        model = fit(x_all[pool][chosen], weak["labels"][chosen])
        majority = np.bincount(y_all[pool]).argmax()
        weak_rows.append(
            {
                "label_accuracy": weak["accuracy"],
                "coverage": weak["coverage"],
                "model_accuracy": float(model.score(x_all[test], y_all[test])),
                "majority_accuracy": float((y_all[test] == majority).mean()),
            }
        )

    active, random = np.array(curves["active"]), np.array(curves["random"])
    random_final = float(random.mean(axis=0)[-1])
    active_needed = first_reaching(counts, active.mean(axis=0), random_final)
    weak_mean = {k: float(np.mean([r[k] for r in weak_rows])) for k in weak_rows[0]}
    random_to_match_weak = first_reaching(counts, random.mean(axis=0), weak_mean["model_accuracy"])
    args.out.mkdir(parents=True, exist_ok=True)
    png = args.out / "labeling.png"
    plot(counts, active, random, weak_mean["model_accuracy"], weak_mean["majority_accuracy"], png)

    print(f"{'labels':>7} {'active':>8} {'random':>8}")
    for i, n in enumerate(counts):
        print(f"{n:>7} {active[:, i].mean():>8.4f} {random[:, i].mean():>8.4f}")
    print(
        f"random sampling's final accuracy {random_final:.4f} at {counts[-1]} labels; "
        f"active learning reaches it at {active_needed} labels"
    )
    print(
        f"weak supervision ({len(FUNCTIONS)} functions, threshold {THRESHOLD}): label accuracy "
        f"{weak_mean['label_accuracy']:.4f} on {weak_mean['coverage']:.1%} of the pool; "
        f"model accuracy {weak_mean['model_accuracy']:.4f} vs majority class "
        f"{weak_mean['majority_accuracy']:.4f}; random sampling needs "
        f"{random_to_match_weak} hand labels to match it"
    )
    print(f"plot: {png}")
    figures = {
        "seeds": len(args.seeds),
        "random_final_labels": counts[-1],
        "random_final_accuracy": round(random_final, 4),
        "active_labels_to_match_random": active_needed,
        "label_fraction_active_to_match_random": (
            None if active_needed is None else round(active_needed / counts[-1], 4)
        ),
        "active_final_accuracy": round(float(active.mean(axis=0)[-1]), 4),
        "weak_label_accuracy": round(weak_mean["label_accuracy"], 4),
        "weak_label_coverage": round(weak_mean["coverage"], 4),
        "weak_model_accuracy": round(weak_mean["model_accuracy"], 4),
        "majority_baseline_accuracy": round(weak_mean["majority_accuracy"], 4),
        "random_labels_to_match_weak": random_to_match_weak,
        "plot": str(png),
        "wall_s": round(time.perf_counter() - started, 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
