"""Labeling in a simulation: hide most labels at each virtual site, answer its queue.

A virtual site's raw file keeps only a share of its labels; the hidden ones go to
``<site>/truth.csv`` beside it (the simulated annotator's knowledge, not the site's
data). After each round the ClientApp queues the rows the new global model is least
sure of (run config ``label-queue-size``); before the site trains in the next round,
:class:`SimulatedAnnotator` answers up to its budget of queued rows from the truth,
wrong with probability ``error_rate``, through the same ``label import`` the site's
operator uses.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from client.labeling.importing import import_labels
from client.labeling.labels import given_labels
from client.node import derive_seed, site_config_path
from client.store import QUEUE, ROW_ID, SiteStore
from common.config import load_site_config
from common.errors import FedlifeError

if TYPE_CHECKING:  # the ClientApp's types; importing Flower here would cost every CLI call
    from flwr.app import Context, Message
    from flwr.clientapp.typing import ClientAppCallable

TRUTH = "truth.csv"
ANNOTATOR = "simulated-annotator"


def hide_labels(
    rows: pl.DataFrame, label: str, fraction: float, rng: np.random.Generator
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` with ``fraction`` of the labels blanked, and the hidden truth by row id.

    Row ids are the ones ``prepare`` gives a headered CSV written as ``data.csv``
    (``data.csv:<line>``), the file ``simulations.data.sites.write_site`` writes.
    """
    hidden = rng.random(rows.height) < fraction
    truth = pl.DataFrame(
        {
            "row_id": [f"data.csv:{line}" for line in np.flatnonzero(hidden) + 2],
            "label": rows[label].cast(pl.String).filter(pl.Series(hidden)),
        }
    )
    blanked = rows.with_columns(
        pl.when(pl.Series(hidden)).then(None).otherwise(pl.col(label)).alias(label)
    )
    return blanked, truth


class SimulatedAnnotator:
    """A ClientApp train mod: answer the site's queue from the hidden truth, then train.

    Parameters
    ----------
    sites_dir : the simulation's folder of virtual sites.
    budget : most labels each site gets per round.
    error_rate : chance an answer names another class.
    seed : seeds the annotator's mistakes.
    """

    def __init__(self, sites_dir: str, budget: int, error_rate: float, seed: int) -> None:
        self.sites_dir, self.budget = sites_dir, budget
        self.error_rate, self.seed = error_rate, seed

    def __call__(self, msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
        with contextlib.suppress(FedlifeError):  # no queue yet: the site trains on what it has
            self.answer(site_config_path(ctxt, self.sites_dir))
        return call_next(msg, ctxt)

    def answer(self, site_toml: Path) -> int:
        """Label up to ``budget`` queued rows not labeled yet; return how many."""
        truth_file = site_toml.parent / TRUTH
        config = load_site_config(site_toml)
        store = SiteStore(config.store_dir)
        if not truth_file.exists() or store.latest(QUEUE) is None:
            return 0
        done = given_labels(store).select(ROW_ID)
        queued = store.read(QUEUE).join(done, on=ROW_ID, how="anti").sort("rank")
        truth = pl.read_csv(truth_file, infer_schema=False)
        answers = (
            queued.head(self.budget).select(pl.col(ROW_ID).alias("row_id")).join(truth, on="row_id")
        )
        if answers.height == 0:
            return 0
        version = store.latest(QUEUE).version  # type: ignore[union-attr]  # the queue was read above
        classes = sorted(truth["label"].unique().to_list())
        rng = np.random.default_rng(derive_seed(self.seed, site_toml.parent.name, version))
        wrong = rng.random(answers.height) < self.error_rate
        index = answers["label"].replace_strict({c: i for i, c in enumerate(classes)}).to_numpy()
        shifted = (index + rng.integers(1, max(len(classes), 2), answers.height)) % len(classes)
        answers = answers.with_columns(
            pl.when(pl.Series(wrong))
            .then(pl.Series([classes[i] for i in shifted], dtype=pl.String))
            .otherwise("label")
            .alias("label")
        )
        sheet = store.root / "labeling" / f"answers-{version}.csv"
        sheet.parent.mkdir(parents=True, exist_ok=True)
        answers.write_csv(sheet)
        report = import_labels(store, config, sheet, ANNOTATOR)
        return sum(report.applied.values())
