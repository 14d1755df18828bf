"""A site's answer to an evaluate message: metrics, fairness counts and importance of
the global model (and of the champion beside a challenger), released as aggregates.

Loaded by the ClientApp only for evaluate messages: torch is the cost.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

from flwr.app import Message

from client.federation.assessment import fairness_stats, permutation_importance, predictions
from client.federation.global_model import GlobalModel, received_model
from client.federation.site_replies import (
    excluded,
    released_count,
    released_metrics,
    site_record_of,
)
from client.labeling.active import queue_after_round
from client.node import derive_seed
from client.site import Site
from common import keys
from common.errors import FedlifeError
from common.evaluation import evaluate_model
from common.features import FeatureSpec
from common.models import build_model
from common.wire.messages import AssessmentRecord, ChampionFairness, EvaluateReply


def evaluate_reply(site: Site, message: Message, keys_folder: Path) -> Message:
    """The global model's metrics on the site's held-out rows (its training rows when it
    holds none out), with fairness counts, feature importance when asked, and the
    champion's figures beside a challenger's; a label queue for the next round."""
    try:
        config = message.content[keys.CONFIG]
        spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
        data = site.data(spec, int(config[keys.SEED]))
        model = received_model(message, spec, keys_folder)
    except FedlifeError as error:
        return excluded(message, site.name, str(error))
    queue_size = int(config.get(keys.LABEL_QUEUE_SIZE, 0))
    with contextlib.suppress(FedlifeError):  # a queue is a by-product: never fails a round
        source = f"round {config.get(keys.SERVER_ROUND, '?')} global model"
        queue_after_round(site.store, site.config, GlobalModel(model, spec, source), queue_size)
    x, y, split = (
        (data.x_test, data.y_test, "test")
        if len(data.y_test)
        else (data.x_train, data.y_train, "train")
    )
    metrics = released_metrics(site, evaluate_model(model, x, y), len(y))
    site_record = site_record_of(site, data.table_version).model_copy(update={"eval_split": split})
    groups = data.groups_test if split == "test" else data.groups_train
    champion = {}
    if keys.CHAMPION_ARRAYS in message.content:  # champion / challenger: both, same rows
        champion = _champion(site, message, spec, x, y, groups)
    reply = EvaluateReply(
        metrics=metrics,
        site=site_record,
        assessment=_assessment(site, model, x, y, groups, spec, config),
        **champion,
    )
    return Message(reply.to_content(), reply_to=message)


def _assessment(site: Site, model, x, y, groups, spec: FeatureSpec, config) -> AssessmentRecord:
    """Fairness counts (every round) and feature importance (when asked), as aggregates."""
    k, seed = site.config.quality.min_group_size, int(config[keys.SEED])
    fairness = fairness_stats(y, predictions(model, x), groups, spec.num_classes - 1, k)
    importance = None
    if bool(config.get(keys.EXPLAIN, False)):
        importance = permutation_importance(model, x, y, spec, derive_seed(seed, site.name), k)
    return AssessmentRecord(
        fairness=fairness or "",
        importance=json.dumps(importance) if importance else "",
        num_examples=released_count(site, len(y)),
    )


def _champion(site: Site, message: Message, spec: FeatureSpec, x, y, groups) -> dict:
    """The champion's metrics and fairness counts on the rows the challenger was judged
    on, released as the challenger's are (coarsened while privacy is on)."""
    config = message.content[keys.CONFIG]
    champion = build_model(str(config[keys.MODEL]), spec.num_features, spec.num_classes)
    champion.load_state_dict(message.content[keys.CHAMPION_ARRAYS].to_torch_state_dict())
    k = site.config.quality.min_group_size
    fairness = fairness_stats(y, predictions(champion, x), groups, spec.num_classes - 1, k)
    return {
        "champion_metrics": released_metrics(site, evaluate_model(champion, x, y), len(y)),
        "champion_fairness": ChampionFairness(fairness=fairness or ""),
    }
