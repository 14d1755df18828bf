"""Active learning at a site: score unlabeled rows by how unsure the model is of them.

The queue holds the rows whose labels would teach the model most: the highest
uncertainty (``entropy`` of the predicted distribution, or ``margin``: one minus the
gap between the two likeliest classes). With ``diverse`` the queue is also spread
out: among the most uncertain candidates, each next row is the one farthest from the
rows already chosen (in the model's encoded feature space), so annotators do not
label near-duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from client.federation.global_model import GlobalModel, load_global_model
from client.labeling.labels import unlabeled_rows
from client.sealed_files import write_sealed
from client.site_audit import site_audit
from client.store import QUEUE, ROW_ID, SiteStore, TableVersion
from common.config import SiteConfig
from common.errors import ConfigError, DataError, StoreError

STRATEGIES = ("entropy", "margin")
# With diversity, candidates are this many times the queue size, most uncertain first.
_DIVERSE_POOL = 5


def uncertainty(probabilities: np.ndarray, strategy: str) -> np.ndarray:
    """Higher = more uncertain, per row of class probabilities."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}'; expected one of {list(STRATEGIES)}")
    p = np.clip(probabilities, 1e-12, 1.0)
    if strategy == "entropy":
        return -(p * np.log(p)).sum(axis=1)
    top = np.sort(p, axis=1)[:, ::-1]
    return 1.0 - (top[:, 0] - top[:, 1])


def select(
    probabilities: np.ndarray,
    features: np.ndarray,
    size: int,
    strategy: str = "entropy",
    *,
    diverse: bool = False,
) -> np.ndarray:
    """Indices of the ``size`` most useful rows, most useful first."""
    scores = uncertainty(probabilities, strategy)
    ranked = np.argsort(-scores, kind="stable")
    if not diverse or size >= len(ranked):
        return ranked[:size]
    pool = ranked[: size * _DIVERSE_POOL]
    points = features[pool]
    chosen = [0]
    distance = np.linalg.norm(points - points[0], axis=1)
    while len(chosen) < size:
        # Farthest from what is chosen, ties to the more uncertain (earlier) row.
        nxt = int(np.argmax(distance))
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(points - points[nxt], axis=1))
    return pool[chosen]


@dataclass(frozen=True)
class Queue:
    """A queue written for annotators: the table version, the sealed CSV and the rows."""

    version: TableVersion
    csv: Path
    rows: pl.DataFrame
    candidates: int


def resolve_model(config: SiteConfig, model: str | Path | None) -> GlobalModel:
    """The model named on the command line, else ``labeling.model`` of site.toml."""
    chosen = model or config.labeling.model
    if not chosen:
        raise ConfigError("no model to score with: pass --model PATH or set labeling.model")
    path = Path(chosen)
    return load_global_model(path if path.is_absolute() or model else config.base_dir / path)


def refresh_queue(
    store: SiteStore,
    config: SiteConfig,
    model: GlobalModel,
    size: int,
    strategy: str = "entropy",
    *,
    diverse: bool = False,
) -> Queue:
    """Score the unlabeled rows with ``model``; write the ``size`` best as the queue.

    The one labeling action of active learning: a new version of the ``queue`` table
    and ``<store>/labeling/queue-vN.csv.sealed`` (row id, features, an empty label
    column to fill in and give back to ``label import``; sealed by
    ``client.sealed_files``: ``fedlife-site open`` opens it). Both stay at the site.
    """
    if size < 1:
        raise ConfigError(f"queue size must be at least 1, got {size}")
    candidates = unlabeled_rows(store, config)
    if candidates.height == 0:
        raise DataError("no unlabeled rows to queue: every row has a label")
    probabilities = model.predict_proba(candidates)
    chosen = select(probabilities, model.encode(candidates), size, strategy, diverse=diverse)
    scores = uncertainty(probabilities, strategy)[chosen]
    features = [c for c in config.schema.features if c in candidates.columns]
    rows = (
        candidates[chosen]
        .select(ROW_ID, *features)
        .with_columns(
            pl.Series("rank", np.arange(1, len(chosen) + 1), dtype=pl.Int64),
            pl.Series("score", scores, dtype=pl.Float64),
        )
    )
    blank = {"label": pl.lit(""), "annotator": pl.lit("")}
    text = rows.select(pl.col(ROW_ID).alias("row_id"), "rank", *features, **blank).write_csv()
    # The sheet is sealed under its name, which holds the version: written for the next
    # version before the commit, so a sheet that cannot be written leaves no queue behind.
    latest = store.latest(QUEUE)
    expected = 0 if latest is None else latest.version + 1
    folder = store.root / "labeling"
    try:
        sheet = write_sealed(store.root, folder / f"queue-v{expected}.csv", text.encode("utf-8"))
    except OSError as error:
        raise StoreError(f"{folder}: cannot write the queue ({error.strerror})") from None
    try:
        version = _commit_queue(store, rows, model, strategy, candidates.height, diverse=diverse)
    except BaseException:
        sheet.unlink(missing_ok=True)
        raise
    if version.version != expected:  # another writer committed in between
        sheet = write_sealed(
            store.root, folder / f"queue-v{version.version}.csv", text.encode("utf-8")
        )
    site_audit(config).append(
        "label-queue", table_version=version.version, rows=rows.height, strategy=strategy
    )
    return Queue(version, sheet, rows, candidates.height)


def _commit_queue(
    store: SiteStore,
    rows: pl.DataFrame,
    model: GlobalModel,
    strategy: str,
    candidates: int,
    *,
    diverse: bool,
) -> TableVersion:
    return store.write(
        QUEUE,
        rows,
        {
            "operation": "label-queue",
            "model": model.source,
            "strategy": strategy,
            "diverse": diverse,
            "size": rows.height,
            "candidates": candidates,
        },
    )


def queue_after_round(
    store: SiteStore, config: SiteConfig, model: GlobalModel, size: int
) -> Queue | None:
    """The ClientApp's refresh of the queue with a round's global model (``size`` 0: none).

    A site without unlabeled rows simply has no queue: that is not an error here.
    """
    if size < 1 or unlabeled_rows(store, config).height == 0:
        return None
    return refresh_queue(store, config, model, size, config.labeling.strategy)
