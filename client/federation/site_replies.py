"""What a site sends besides its update: the records every reply carries, and releases.

The site record and the exclusion every reply may carry, row counts and metrics as
they leave (coarsened while privacy is on), the statistics release (aggregates only)
and the DP moments release, checked against and recorded in the site's ledger.
"""

from __future__ import annotations

import json
import math

from flwr.app import Message

from client.federation.statistics import site_statistics
from client.privacy.ledger import release_noise
from client.privacy.release import record_release, release_moments
from client.privacy.subjects import one_frame_row_per_subject, subject_column
from client.retention.erasure import PurgedVersions, site_key
from client.site import Site
from client.site_audit import site_audit
from common import keys
from common.audit import keyed_digest
from common.disclosure import coarse_count, coarse_metric
from common.errors import BudgetExceededError
from common.features import FeatureSpec
from common.wire.messages import (
    MAX_REASON,
    EvaluateMetrics,
    ExcludedRecord,
    Exclusion,
    MomentsRecord,
    MomentsReply,
    SiteName,
    SiteRecord,
    StatisticsRecord,
    StatisticsReply,
)


def site_record_of(site: Site, table_version: int = -1) -> SiteRecord:
    privacy = site.config.privacy
    labeled = site.labeled_version
    audit_head, store_id = audit_identity(site)
    return SiteRecord(
        name=site.name,
        table_version=table_version,
        labeled_version=-1 if labeled is None else labeled.version,
        epsilon_budget=float(privacy.epsilon_budget) if privacy.enabled else -1.0,
        delta=float(privacy.delta),
        purged_versions=json.dumps(PurgedVersions(site.config.store_dir).erased()),
        audit_head=audit_head,
        store_id=store_id,
    )


def audit_identity(site: Site) -> tuple[str, str]:
    """The audit log's head and the store's keyed name, which the coordinator keeps
    per site: a store whose audit log went backwards is noticed at the next run."""
    seq, head = site_audit(site.config).head()
    store_id = keyed_digest(site_key(site.config.store_dir), "store-id")[:16]
    return f"{seq}:{head}", store_id


def excluded(message: Message, site_name: str, reason: str) -> Message:
    reply = Exclusion(
        excluded=ExcludedRecord(reason=reason[:MAX_REASON]), site=SiteName(name=site_name)
    )
    return Message(reply.to_content(), reply_to=message)


def released_count(site: Site, rows: int) -> int:
    """A row count as it leaves: a multiple of min_group_size while privacy is on."""
    if not site.config.privacy.enabled:
        return rows
    return coarse_count(rows, site.config.quality.min_group_size)


def released_metrics(site: Site, metrics: dict[str, float], rows: int) -> EvaluateMetrics:
    """Evaluation metrics as they leave: rounded to a step of min_group_size rows while
    privacy is on (``common.disclosure.coarse_metric``)."""
    metrics.setdefault("auc", math.nan)
    if site.config.privacy.enabled:
        k = site.config.quality.min_group_size
        metrics = {name: coarse_metric(value, rows, k) for name, value in metrics.items()}
    return EvaluateMetrics(**metrics, num_examples=released_count(site, rows))


def statistics_reply(site: Site, message: Message) -> Message:
    """Histograms (current and previous version) and the quality summary: aggregates only."""
    spec = FeatureSpec.from_json(str(message.content[keys.CONFIG][keys.FEATURE_SPEC]))
    record = StatisticsRecord(statistics=json.dumps(site_statistics(site, spec)))
    site_record = site_record_of(site)
    if site.config.privacy.enabled:  # what retrain's budget_left reads
        epsilon = site.ledger.epsilon(site.config.privacy.delta)
        site_record = site_record.model_copy(update={"epsilon": epsilon})
    reply = StatisticsReply(statistics=record, site=site_record)
    return Message(reply.to_content(), reply_to=message)


def moments_reply(site: Site, message: Message) -> Message:
    """DP moments of the site's features, if its policy allows; recorded in its ledger."""
    privacy = site.config.privacy
    if not privacy.release_moments:
        return excluded(message, site.name, "site policy: no release of feature moments")
    config = message.content[keys.CONFIG]
    spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
    run_id = str(config[keys.RUN_ID])
    frame, version = site.clean
    column = subject_column(site.config)
    if privacy.enabled and column is not None:  # the unit of privacy: a subject
        frame = one_frame_row_per_subject(frame, column, site.noise.numpy_generator("subjects"))
    with site.ledger.locked():  # the check and the record, as for training
        try:
            sigma = moments_noise(site)
            projected = (
                site.ledger.epsilon(privacy.delta, [(sigma, 1.0, 1)]) if privacy.enabled else 0
            )
            if projected > privacy.epsilon_budget:
                raise BudgetExceededError(
                    f"privacy budget: releasing moments would reach epsilon {projected:.3f}"
                )
        except BudgetExceededError as refusal:
            site_audit(site.config).append("refuse-budget", reason=str(refusal), run=run_id)
            return excluded(message, site.name, str(refusal))
        rng = site.noise.numpy_generator("moments")
        public = frozenset(n for n, c in site.config.schema.columns.items() if c.public)
        k, squares = site.config.quality.min_group_size, bool(config.get(keys.SPREADS, True))
        moments = release_moments(frame, spec, sigma, k, rng, public, squares=squares)
        record_release(site.ledger, sigma, privacy.delta, run_id, version.version)
    site_audit(site.config).append(
        "release-moments", run=run_id, table_version=version.version, noise_multiplier=sigma
    )
    reply = MomentsReply(
        moments=MomentsRecord.model_validate(moments.to_dict()), site=site_record_of(site)
    )
    return Message(reply.to_content(), reply_to=message)


def moments_noise(site: Site) -> float:
    """The policy's fixed noise, else the least that costs its share of the budget left."""
    privacy = site.config.privacy
    if privacy.moments_noise_multiplier is not None:
        return privacy.moments_noise_multiplier
    spent = site.ledger.epsilon(privacy.delta) if privacy.enabled else 0.0
    allowance = privacy.moments_budget_share * (privacy.epsilon_budget - spent)
    return release_noise(allowance, privacy.delta, privacy.accountant)
