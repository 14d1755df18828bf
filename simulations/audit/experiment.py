"""``fedlife-sim audit``: does the privacy promise hold against a real attack?

The audit trains the same federation twice through the real fedlife path (each
site's ``prepare``, the Flower simulation on Ray, Opacus DP-SGD, the sites'
privacy ledgers): once without DP and once with DP at ``epsilon`` per site. Before
training, ``canaries`` rows are set aside and given a wrong label (a random other
class). Half of them, the members, are added to the sites' raw data; the other
half never leaves the audit. The loss-threshold attack (``simulations.audit.mia``) then
tells members from non-members under each final global model, and the epsilon
lower bound it proves is set beside the epsilon the sites' accountants report.
A lower bound above the accountant's epsilon means the accounting is wrong.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl
import torch

from client.pipeline.prepare import prepare
from common.config import load_site_config
from common.errors import ConfigError, FederationError
from common.features import FeatureSpec
from common.models import build_model
from server.run_dir import RunDirectory
from simulations.audit.mia import loss_threshold_attack
from simulations.audit.spec import AuditSpec
from simulations.data.datasets import load_dataset
from simulations.data.partition import iid
from simulations.data.sites import write_site
from simulations.runner import run
from simulations.spec import SimulationSpec


def audit(spec: AuditSpec) -> dict[str, Any]:
    """Run both trainings and both attacks; return the figures (see module docstring)."""
    out = spec.out_dir()
    dataset = load_dataset(spec.dataset)
    rng = np.random.default_rng(spec.seed)
    frame = dataset.frame
    order = rng.permutation(frame.height)
    n_test = int(round(frame.height * spec.test_fraction))
    canary_rows = order[: spec.canaries]
    test_rows, train_rows = (
        order[spec.canaries : spec.canaries + n_test],
        order[spec.canaries + n_test :],
    )
    if len(train_rows) < spec.sites * 10:
        raise ConfigError(
            f"{frame.height} rows leave too few for {spec.sites} sites after the canaries"
        )
    canaries = _mislabel(frame[canary_rows.tolist()], dataset.label, rng)
    members = np.arange(spec.canaries) < spec.canaries // 2
    member_shares = np.array_split(np.flatnonzero(members), spec.sites)
    site_rows = [  # the same rows in both runs: only DP differs
        pl.concat([frame[train_rows[part].tolist()], canaries[share.tolist()]])
        for part, share in zip(iid(len(train_rows), spec.sites, rng), member_shares)
    ]
    results = {}
    for name, epsilon in (("no_dp", None), ("dp", spec.epsilon)):
        root = out / name
        root.mkdir(parents=True, exist_ok=True)
        frame[test_rows.tolist()].write_csv(root / "test.csv")
        for index, rows in enumerate(site_rows):
            prepare(
                load_site_config(
                    write_site(root / "sites", index, rows, dataset, epsilon, spec.delta)
                )
            )
        summary = run(
            SimulationSpec(
                dataset=spec.dataset,
                sites=spec.sites,
                rounds=spec.rounds,
                epsilon=epsilon,
                delta=spec.delta,
                seed=spec.seed,
                run_dir=str(root / "run"),
                sites_dir=str(root / "sites"),
                run_options={
                    "model": spec.model,
                    "local_epochs": spec.local_epochs,
                    "batch_size": spec.batch_size,
                    "learning_rate": spec.learning_rate,
                    "momentum": spec.momentum,
                    **spec.options,
                },
            )
        )
        if summary["rounds"] < spec.rounds:
            raise FederationError(f"audit run '{name}' stopped: {summary['stopped_reason']}")
        losses = canary_losses(RunDirectory(root / "run"), canaries)
        attack = loss_threshold_attack(losses, members, spec.delta, seed=spec.seed)
        spent = list(summary["epsilon_spent"].values())
        results[name] = {
            "auc": attack.auc,
            "empirical_epsilon_lower_bound": attack.epsilon_lower_bound,
            "accountant_epsilon": math.inf if not spent or None in spent else max(spent),
            "test_accuracy": summary["test_accuracy"],
            "attack": attack,
            "run_dir": str(root / "run"),
        }
    return results


def canary_losses(run_dir: RunDirectory, canaries: pl.DataFrame) -> np.ndarray:
    """Per-canary cross-entropy under the run's final global model."""
    info = run_dir.read_json("run.json")
    spec = FeatureSpec.from_json(info["feature_spec"])
    model = build_model(info["config"]["model"], spec.num_features, spec.num_classes)
    model.load_state_dict(torch.load(run_dir.path / "model.pt", weights_only=True))
    x, y = spec.encode(canaries)
    model.eval()
    with torch.no_grad():
        logits = model(torch.tensor(x))
        return torch.nn.functional.cross_entropy(logits, torch.tensor(y), reduction="none").numpy()


def _mislabel(rows: pl.DataFrame, label: str, rng: np.random.Generator) -> pl.DataFrame:
    """``rows`` each with a label drawn from the classes other than its own."""
    classes = np.sort(rows[label].unique().to_numpy())
    index = np.searchsorted(classes, rows[label].to_numpy())
    shifted = (index + rng.integers(1, len(classes), size=rows.height)) % len(classes)
    return rows.with_columns(pl.Series(label, classes[shifted], dtype=rows.schema[label]))


def print_audit(results: dict[str, Any], console=None) -> None:
    """A readable table of both runs' attack figures."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="privacy audit: loss-threshold membership inference on canaries")
    for column in (
        "training",
        "attack AUC",
        "empirical eps lower bound",
        "accountant eps",
        "test accuracy",
    ):
        table.add_column(column, justify="right")
    for name, label in (("no_dp", "no DP"), ("dp", "DP")):
        r = results[name]
        table.add_row(
            label,
            f"{r['auc']:.4f}",
            f"{r['empirical_epsilon_lower_bound']:.3f}",
            "inf" if math.isinf(r["accountant_epsilon"]) else f"{r['accountant_epsilon']:.3f}",
            "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}",
        )
    (console or Console()).print(table)
