"""Drift of served records against the federation's training histograms.

Served records are binned with :func:`common.histograms.histogram_columns`, the
same bins the sites' released histograms use, and compared with
:func:`common.histograms.psi`.
"""

from __future__ import annotations

import polars as pl

from common.features import FeatureSpec
from common.histograms import histogram_columns, psi, released_bins
from common.stats import CategoryStats
from server.serving.records import records_frame


def served_histograms(spec: FeatureSpec, records: list[dict]) -> dict[str, CategoryStats]:
    """Histograms of checked raw records (see ``check_records``), per input column."""
    frame = records_frame(spec, records).with_columns(
        pl.lit(None, dtype=pl.String).alias(spec.label)
    )
    binned = frame.select(histogram_columns(spec)).drop(spec.label)
    histograms = {}
    for column in binned.columns:
        values = binned.get_column(column)
        counts = values.drop_nulls().value_counts()
        histograms[column] = CategoryStats(
            {str(k): int(n) for k, n in counts.iter_rows()}, int(values.null_count())
        )
    return histograms


def served_drift(
    reference: dict[str, CategoryStats], served: dict[str, CategoryStats]
) -> dict[str, float | None]:
    """PSI per column of ``served`` against ``reference``.

    None where the reference has no column or released no bin of it (all folded
    into '__other__'): there is nothing to compare, which is not "no drift".
    """
    return {
        c: psi(reference[c], h) if c in reference and released_bins(reference[c]) else None
        for c, h in served.items()
    }


PENDING_LIMIT = 4096  # served records held before they are binned (then forgotten)


class DriftMonitor:
    """Served histograms accumulated over requests, and their drift against training.

    Parameters
    ----------
    spec : the model's feature contract (its bins are the sites' bins).
    reference : column -> the federation's released training histogram.
    threshold : PSI above which a column is flagged.
    """

    def __init__(
        self, spec: FeatureSpec, reference: dict[str, CategoryStats], threshold: float
    ) -> None:
        self.spec, self.reference, self.threshold = spec, reference, threshold
        self.served: dict[str, CategoryStats] = {}
        self.records = 0
        # Binned in batches: one polars pass per request would double a small request's time.
        self._pending: list[dict] = []

    def observe(self, records: list[dict]) -> None:
        """Add checked raw records (see ``check_records``) to the served histograms."""
        self._pending.extend(records)
        self.records += len(records)
        if len(self._pending) >= PENDING_LIMIT:
            self._flush()

    def drift(self) -> dict[str, float | None]:
        """PSI per column against the training histograms (None: nothing to compare)."""
        self._flush()
        return served_drift(self.reference, self.served)

    def _flush(self) -> None:
        if not self._pending:
            return
        for column, histogram in served_histograms(self.spec, self._pending).items():
            known = self.served.get(column)
            self.served[column] = histogram if known is None else known.merge(histogram)
        self._pending = []

    def section(self) -> str:
        """A Markdown drift section in the style of the run report."""
        drift = self.drift()
        flagged = [c for c, v in drift.items() if v is not None and v > self.threshold]
        lines = [
            "## Drift of served records",
            "",
            f"{self.records} served records against the federation's released training "
            f"histograms; PSI above {self.threshold:g} is flagged "
            "(below 0.1 stable, 0.1-0.25 moderate, above 0.25 a significant shift).",
            "",
            "| column | PSI | flagged |",
            "|---|---|---|",
        ]
        for column, value in sorted(drift.items()):
            shown = "-" if value is None else f"{value:.3f}"
            lines.append(f"| {column} | {shown} | {'yes' if column in flagged else ''} |")
        lines += ["", "Flagged: " + (", ".join(flagged) or "none"), ""]
        return "\n".join(lines)
