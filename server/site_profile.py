"""The run's first exchanges with the sites: their feature contracts (merged into the
run's), their DP moments (to center and scale the features) and their data's statistics
(for drift). Each is asked once per run and recorded in the run directory."""

from __future__ import annotations

import json
import logging

from flwr.app import Message

from common import keys
from common.errors import DataError, FederationError
from common.features import FeatureSpec
from common.moments import merge_moments
from common.run_config import RunConfig
from common.wire.messages import MomentsReply, ProfileReply, StatisticsReply
from server.contract_check import disagreements
from server.drift import statistics_record
from server.replies import purged_versions
from server.run_dir import RunDirectory
from server.site_exchange import SiteExchange

STATISTICS = "statistics.json"
logger = logging.getLogger("fedlife.federation")


def query_statistics(
    sites: SiteExchange, run_id: str, spec: FeatureSpec
) -> tuple[list[Message], list[dict[str, str]]]:
    """Every site's histograms and quality counts on ``spec``'s bins, and who refused."""
    return sites.query(
        {keys.RUN_ID: run_id, keys.RELEASE: keys.STATISTICS, keys.FEATURE_SPEC: spec.to_json()},
        StatisticsReply,
        {"spec": spec},
    )


def agree_on_features(
    sites: SiteExchange, config: RunConfig, run_dir: RunDirectory, run_id: str
) -> FeatureSpec:
    """The profile round (and, if asked, the moments round); recorded in run.json."""
    spec, excluded = profile(sites, run_dir, run_id)
    if config.normalization != "range":
        spec, refused = _standardise(sites, config, run_dir, run_id, spec)
        excluded += refused
    run_dir.update_info(feature_spec=spec.to_json(), profile_excluded=excluded)
    return spec


def profile(
    sites: SiteExchange, run_dir: RunDirectory, run_id: str
) -> tuple[FeatureSpec, list[dict[str, str]]]:
    """Ask every site for its declared feature contract; merge the agreeing ones."""
    replies, excluded = sites.query({keys.RUN_ID: run_id}, ProfileReply)
    specs, names, purged = [], [], {}
    for reply in replies:
        specs.append(FeatureSpec.from_json(str(reply.content[keys.PROFILE][keys.FEATURE_SPEC])))
        names.append(str(reply.content[keys.SITE][keys.SITE_NAME]))
        purged[names[-1]] = purged_versions(reply)
    run_dir.update_info(purged_versions=purged)
    if not specs:
        raise FederationError(f"no site answered the profile round: {excluded}")
    merged, disagreeing = FeatureSpec.merge(specs)
    excluded += [{"site": names[i], "reason": "schema mismatch"} for i in disagreeing]
    warnings = disagreements(specs, names, merged)
    for warning in warnings:
        logger.warning("feature contract: %s", warning)
    run_dir.update_info(contract_warnings=warnings)
    return merged, excluded


def _standardise(
    sites: SiteExchange, config: RunConfig, run_dir: RunDirectory, run_id: str, spec: FeatureSpec
) -> tuple[FeatureSpec, list[dict[str, str]]]:
    """Center (for 'moments' also scale) features with the sites' DP moments.

    Each site pays for its release in its ledger; a site that refuses still trains.
    """
    replies, excluded = sites.query(
        {
            keys.RUN_ID: run_id,
            keys.RELEASE: keys.MOMENTS,
            keys.SPREADS: config.normalization == "moments",
            keys.FEATURE_SPEC: spec.to_json(),
            keys.SEED: config.seed,
        },
        MomentsReply,
        {"spec": spec},
    )
    releases = [dict(reply.content[keys.MOMENTS]) for reply in replies]
    try:
        centers, spreads = merge_moments(releases)
    except DataError as error:
        reason = f"{error}: {excluded}"
        if config.normalization == "moments":
            raise FederationError(reason) from None
        # Centering helps training but nothing needs it: the public ranges still work.
        logger.warning("features not centered, public ranges only: %s", reason)
        run_dir.update_info(centers_skipped=reason)
        return spec, excluded
    return spec.with_moments(centers, spreads), excluded


def observe_sites(
    sites: SiteExchange, config: RunConfig, run_dir: RunDirectory, run_id: str, spec: FeatureSpec
) -> None:
    """Ask the sites for histograms and quality counts; record drift, warn about it.

    Once per run: a resumed run keeps what its start recorded of the data.
    """
    replies, excluded = query_statistics(sites, run_id, spec)
    statistics = {
        str(r.content[keys.SITE][keys.SITE_NAME]): json.loads(
            str(r.content[keys.STATISTICS][keys.STATISTICS])
        )
        for r in replies
    }
    record = statistics_record(statistics, spec, config.drift_threshold)
    run_dir.write_json(STATISTICS, {**record, "excluded": excluded})
