"""The quality gate a site's clean data must pass before it trains."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from common.config import SiteConfig, row_dependent_cleaning
from common.errors import ConfigError


@dataclass(frozen=True)
class GateFailure:
    """One rule of the quality gate that the clean data fails.

    Parameters
    ----------
    rule : which rule failed, with its public threshold: what may leave the site.
    detail : the same with the measured counts or shares, for the site's operator
        only (a count of failing rows is a fact about rows).
    """

    rule: str
    detail: str


def gate_failures(
    frame: pl.DataFrame,
    config: SiteConfig,
    missing: dict[str, float] | None = None,
    *,
    counts: tuple[int, int] | None = None,
) -> list[GateFailure]:
    """The rules of the site's quality gate the clean data fails (empty = passes).

    Parameters
    ----------
    frame : the clean rows (the columns the quality rules name are enough).
    config : the site's config.
    missing : each feature's share of missing values, as prepare measured it.
    counts : the table's rows and label classes, where ``frame`` does not hold every
        row (only for a site without quality rules, which test every row).
    """
    quality = config.quality
    failures = []
    if config.privacy.enabled:
        for setting in row_dependent_cleaning(config.cleaning):
            text = (
                f"{setting} makes a row's features depend on other rows, which DP does not "
                "account for: use impute 'center', 'constant' or 'drop' and outliers 'clip' "
                "(or [privacy] enabled = false)"
            )
            failures.append(GateFailure(text, text))
    height, classes = counts or (frame.height, frame.get_column(config.schema.label).n_unique())
    if height < quality.min_rows:
        failures.append(
            GateFailure(
                f"fewer rows than min_rows={quality.min_rows}",
                f"{height} rows, fewer than min_rows={quality.min_rows}",
            )
        )
    if classes < quality.min_classes:
        failures.append(
            GateFailure(
                f"fewer label classes than min_classes={quality.min_classes}",
                f"{classes} label class(es), fewer than {quality.min_classes}",
            )
        )
    for column, share in sorted((missing or {}).items()):
        if share > quality.max_missing_fraction:
            limit = quality.max_missing_fraction
            failures.append(
                GateFailure(
                    f"{column}: more missing than max_missing_fraction={limit}",
                    f"{column}: {share:.0%} missing, above max_missing_fraction={limit}",
                )
            )
    for rule in quality.rules:
        broken = frame.height - rows_meeting(frame, rule).height
        if broken:
            failures.append(
                GateFailure(f"rule '{rule}' fails", f"rule '{rule}' fails on {broken} row(s)")
            )
    return failures


def gate(
    frame: pl.DataFrame,
    config: SiteConfig,
    missing: dict[str, float] | None = None,
    *,
    counts: tuple[int, int] | None = None,
) -> list[str]:
    """Reasons the clean data fails the site's quality gate, for its operator (empty = passes).

    The parameters are ``gate_failures``'.
    """
    return [failure.detail for failure in gate_failures(frame, config, missing, counts=counts)]


def rows_meeting(frame: pl.DataFrame, rule: str) -> pl.DataFrame:
    """The rows where ``rule`` holds; a rule that cannot be evaluated is a config error."""
    try:
        return frame.filter(pl.sql_expr(rule))
    except pl.exceptions.PolarsError as error:
        first_line = str(error).strip().splitlines()[0]
        raise ConfigError(f"quality rule '{rule}' cannot be evaluated ({first_line})") from None


def gate_columns(config: SiteConfig) -> list[str]:
    """The columns the gate tests: the label and those the quality rules name."""
    named = {config.schema.label}
    for rule in config.quality.rules:
        named.update(pl.sql_expr(rule).meta.root_names())  # checked before any write
    return sorted(named)
