"""Every value a site sends the coordinator, and what protects it.

One row per (record, key) of the ClientApp's replies. A field is

* ``public``: declared, not measured (the schema's feature contract, policy, names,
  versions, the epsilon the ledger composed);
* ``dp``: a differentially private release, charged to the site's ledger;
* ``aggregate``: computed from rows but only over groups of at least
  ``min_group_size`` rows (``common.disclosure``), released by the site's policy;
* ``suppressed``: not released while the site's privacy is on (sent empty or NaN);
* ``open``: computed from rows with neither DP nor suppression. A known gap, listed
  so that it is seen: see the README's threat model.

``tests/privacy/test_disclosed_fields.py`` builds every reply from a real site and
fails on any field this table does not list.
"""

from __future__ import annotations

from enum import StrEnum

from common import keys


class Protection(StrEnum):
    PUBLIC = "public"
    DP = "dp"
    AGGREGATE = "aggregate"
    SUPPRESSED = "suppressed"
    OPEN = "open"


P = Protection
ANY = "*"

FIELDS: dict[tuple[str, str], tuple[Protection, str]] = {
    (keys.SITE, keys.SITE_NAME): (P.PUBLIC, "the site's name in the federation"),
    (keys.SITE, keys.TABLE_VERSION): (P.PUBLIC, "version of the clean table used"),
    (keys.SITE, keys.LABELED_VERSION): (P.PUBLIC, "version of the labeled table used"),
    (keys.SITE, keys.EPSILON_BUDGET): (P.PUBLIC, "the site's budget, from its policy"),
    (keys.SITE, keys.EPSILON): (P.PUBLIC, "epsilon the ledger composed (statistics reply)"),
    (keys.SITE, keys.DELTA): (P.PUBLIC, "the site's delta, from its policy"),
    (keys.SITE, keys.PURGED_VERSIONS): (P.PUBLIC, "table versions erasures purged, not whose"),
    (keys.SITE, "eval-split"): (P.PUBLIC, "whether metrics come from held-out rows"),
    (keys.EXCLUDED, keys.REASON): (P.PUBLIC, "the rule or policy that refused, never a count"),
    (keys.PROFILE, keys.FEATURE_SPEC): (P.PUBLIC, "the schema's declared features and ranges"),
    (keys.PROFILE, "gate"): (P.PUBLIC, "the gate rules that failed, never a count"),
    (keys.ARRAYS, ANY): (P.DP, "model update after DP-SGD, its noise in the ledger"),
    (keys.METRICS, keys.EPSILON): (P.PUBLIC, "epsilon the ledger composed"),
    (keys.METRICS, keys.NUM_EXAMPLES): (P.OPEN, "rows trained or evaluated on (FedAvg weight)"),
    (keys.METRICS, "train-loss"): (P.SUPPRESSED, "NaN while privacy is on"),
    (keys.METRICS, "accuracy"): (P.OPEN, "evaluation of the global model at the site"),
    (keys.METRICS, "loss"): (P.OPEN, "evaluation of the global model at the site"),
    (keys.METRICS, "f1"): (P.OPEN, "evaluation of the global model at the site"),
    (keys.METRICS, "auc"): (P.OPEN, "evaluation of the global model at the site"),
    (keys.CHAMPION_METRICS, "accuracy"): (P.OPEN, "the champion evaluated at the site"),
    (keys.CHAMPION_METRICS, "loss"): (P.OPEN, "the champion evaluated at the site"),
    (keys.CHAMPION_METRICS, "f1"): (P.OPEN, "the champion evaluated at the site"),
    (keys.CHAMPION_METRICS, "auc"): (P.OPEN, "the champion evaluated at the site"),
    (keys.CHAMPION_METRICS, keys.NUM_EXAMPLES): (P.OPEN, "rows the champion was evaluated on"),
    (keys.MOMENTS, "count"): (P.DP, "Gaussian mechanism, in the ledger"),
    (keys.MOMENTS, "sums"): (P.DP, "Gaussian mechanism, in the ledger"),
    (keys.MOMENTS, "squares"): (P.DP, "Gaussian mechanism, in the ledger"),
    (keys.STATISTICS, keys.STATISTICS): (P.AGGREGATE, "histograms, small groups suppressed"),
    (keys.ASSESSMENT, keys.FAIRNESS): (P.AGGREGATE, "per-group counts of >= min_group_size"),
    (keys.CHAMPION_FAIRNESS, keys.FAIRNESS): (P.AGGREGATE, "the champion's, >= min_group_size"),
    (keys.ASSESSMENT, keys.IMPORTANCE): (P.AGGREGATE, "permutation importance, >= min_group_size"),
    (keys.ASSESSMENT, keys.NUM_EXAMPLES): (P.OPEN, "rows the assessment used"),
}


def protection(record: str, key: str) -> Protection | None:
    """How the field ``key`` of record ``record`` is protected; None: not a known field."""
    found = FIELDS.get((record, key)) or FIELDS.get((record, ANY))
    return found[0] if found else None
