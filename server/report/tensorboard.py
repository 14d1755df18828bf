"""Every round's metrics as TensorBoard scalars, so the usual tools read a run.

``tensorboard --logdir <run_dir>/tensorboard`` shows: central and federated
accuracy/loss/F1/AUC, each site's own evaluation, each site's epsilon against its
budget, the number of participating and excluded sites, and the federated
fairness gaps. TensorBoard rather than MLflow: it needs no tracking server or
database, its event files live in the run directory beside ``metrics.jsonl``,
and torch ships the writer.
"""

from __future__ import annotations

import math
from pathlib import Path

from server.round_report import RoundReport

_METRICS = ("accuracy", "loss", "f1", "auc")


class RoundScalars:
    """Writes one round's scalars to ``<run_dir>/tensorboard``.

    Parameters
    ----------
    log_dir : where the event files go.
    """

    def __init__(self, log_dir: str | Path) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imports tensorboard: slow

        self.writer = SummaryWriter(log_dir=str(log_dir))

    def __call__(self, report: RoundReport) -> None:
        step, add = report.round, self._add
        for source in ("central", "federated"):
            for metric in _METRICS:
                add(f"{source}/{metric}", getattr(report, source).get(metric), step)
        for site, metrics in report.per_site.items():
            for metric in _METRICS:
                add(f"sites/{metric}/{site}", metrics.get(metric), step)
        for p in report.participants:
            add(f"privacy/epsilon/{p['site']}", p["epsilon"], step)
            add(f"sites/train_loss/{p['site']}", p["train_loss"], step)
        add("participation/participants", len(report.participants), step)
        add("participation/excluded", len(report.excluded) + len(report.failures), step)
        for attribute, found in report.fairness.get("federated", {}).items():
            for gap in ("demographic_parity_difference", "equalized_odds_difference"):
                add(f"fairness/{attribute}/{gap}", found.get(gap), step)
        self.writer.flush()

    def _add(self, tag: str, value: float | None, step: int) -> None:
        if value is not None and math.isfinite(value):
            self.writer.add_scalar(tag, float(value), step)

    def close(self) -> None:
        self.writer.close()
