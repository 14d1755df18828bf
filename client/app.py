"""The site's Flower ClientApp: answers profile queries, trains with DP, evaluates.

Which site a ClientApp serves comes from its node config (``site-config``, a path to
site.toml) in a deployment, or from ``sites-dir`` + ``partition-id`` in a simulation.
A site that fails its gate or would pass its privacy budget answers with a reason
instead of an update; the server records it and goes on.
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, Context, Message
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from client.federation.assessment import fairness_stats, permutation_importance, predictions
from client.federation.final_model import decrypt_final_reply
from client.federation.global_model import GlobalModel
from client.federation.mods import clip_update_when_asked
from client.federation.site_replies import (
    excluded,
    moments_reply,
    released_count,
    released_metrics,
    site_record_of,
    statistics_reply,
)
from client.federation.training import TrainPlan, sample_rate, steps_per_round, train
from client.labeling.active import queue_after_round
from client.node import derive_seed, site_config_path
from client.privacy import he
from client.privacy.egress import record_egress
from client.privacy.ledger import LedgerEntry
from client.privacy.released import ReleasedUpdate, ReleasedUpdates, request_digest
from client.privacy.subjects import (
    one_row_per_subject,
)
from client.site import Site
from client.site_audit import site_audit
from common import keys
from common.errors import FedlifeError
from common.evaluation import evaluate_model
from common.features import FeatureSpec
from common.models import build_model
from common.wire.encrypted import EncryptedRecord
from common.wire.messages import (
    AssessmentRecord,
    ChampionFairness,
    EncryptedTrainReply,
    EvaluateReply,
    ProfileRecord,
    ProfileReply,
    TrainMetrics,
    TrainReply,
)

SiteResolver = Callable[[Context], Path]


def make_client_app(sites_dir: str | None = None, mods: Sequence[Mod] | None = None) -> ClientApp:
    """Build the ClientApp; ``sites_dir`` overrides the run config's (simulations).

    ``mods`` wrap the train function only (``@app.train(mods=...)``), e.g. the
    attacks of ``simulations.attacks``; innermost, every site clips its update when
    a client-side central-DP wrapper asks (``client.federation.mods``).
    """
    app = ClientApp(mods=[record_egress])

    def load_site(context: Context) -> Site:
        return Site.from_path(site_config_path(context, sites_dir))

    @app.query()
    def profile(message: Message, context: Context) -> Message:
        site = load_site(context)
        config = message.content[keys.CONFIG]
        try:
            if str(config.get(keys.RELEASE, "")) == keys.MOMENTS:
                return moments_reply(site, message)
            if str(config.get(keys.RELEASE, "")) == keys.STATISTICS:
                return statistics_reply(site, message)
            if str(config.get(keys.RELEASE, "")) == keys.DECRYPT_FINAL:
                return decrypt_final_reply(site, message, he_folder(context, site))
            spec = site.declared_spec()
            reasons = site.released_gate_reasons()
        except FedlifeError as error:
            return excluded(message, site.name, str(error))
        record = ProfileRecord(feature_spec=spec.to_json(), gate="; ".join(reasons))
        reply = ProfileReply(profile=record, site=site_record_of(site))
        return Message(reply.to_content(), reply_to=message)

    @app.train(mods=[*(mods or []), clip_update_when_asked])
    def fit(message: Message, context: Context) -> Message:
        site = load_site(context)
        try:
            reply = _train(site, message, he_folder(context, site))
        except FedlifeError as error:
            reply = excluded(message, site.name, str(error))
        _audit_train(site, message, reply)
        return reply

    @app.evaluate()
    def assess(message: Message, context: Context) -> Message:
        site = load_site(context)
        try:
            config = message.content[keys.CONFIG]
            spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
            data = site.data(spec, int(config[keys.SEED]))
            model = _global_model(message, spec, he_folder(context, site))
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
        site_record = site_record_of(site, data.table_version).model_copy(
            update={"eval_split": split}
        )
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

    return app


def he_folder(context: Context, site: Site) -> Path:
    """Where this site's secret HE context is: the bundle ``fedlife-site join`` names in
    the node config, else beside its site.toml (simulations)."""
    bundle = context.node_config.get(keys.BUNDLE)
    return Path(str(bundle)) if bundle else site.config.base_dir


def _train(site: Site, message: Message, keys_folder: Path) -> Message:
    config = message.content[keys.CONFIG]
    reasons = site.released_gate_reasons()
    if reasons:
        return excluded(message, site.name, "quality gate: " + "; ".join(reasons))
    spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
    server_round, seed = int(config[keys.SERVER_ROUND]), int(config[keys.SEED])
    data = site.data(spec, seed)
    x, y = data.x_train, data.y_train
    privacy = site.config.privacy
    if privacy.enabled and data.subjects_train is not None:  # the unit of privacy: a subject
        rows = one_row_per_subject(
            data.subjects_train, site.noise.numpy_generator("subjects", server_round)
        )
        x, y = x[rows], y[rows]
    plan = TrainPlan(
        epochs=int(config[keys.LOCAL_EPOCHS]),
        batch_size=int(config[keys.BATCH_SIZE]),
        learning_rate=float(config[keys.LEARNING_RATE]),
        momentum=float(config.get(keys.MOMENTUM, 0.0)),
        max_grad_norm=float(config[keys.MAX_GRAD_NORM]),
        noise_multiplier=None,
        grad_sample_mode=str(config[keys.GRAD_SAMPLE_MODE]),
        proximal_mu=float(config.get(keys.PROXIMAL_MU, 0.0)),
        seed=derive_seed(seed, server_round, site.name),
    )
    run_id = str(config[keys.RUN_ID])
    model = _global_model(message, spec, keys_folder)
    released = ReleasedUpdates(site.config.store_dir)
    digest = request_digest(model.state_dict(), run_id, server_round)
    # The replay check, projection, training, keep and record hold the budget's lock: no
    # concurrent run overspends, and a request repeated while the first trains replays it.
    with site.ledger.locked():
        update = released.find(run_id, digest)
        if update is None or not site.ledger.trained(run_id, server_round):
            update = _train_round(site, message, model, (x, y), plan, data.table_version, digest)
    if isinstance(update, Message):  # refused
        return update
    return _update_reply(message, site, update, keys_folder)


def _train_round(
    site: Site,
    message: Message,
    model: torch.nn.Module,
    examples: tuple[np.ndarray, np.ndarray],
    plan: TrainPlan,
    table_version: int,
    digest: str,
) -> ReleasedUpdate | Message:
    """Train, keep and record one round (the caller holds the ledger's lock); a refusal
    instead if it would pass the budget. ``digest`` identifies the request."""
    config = message.content[keys.CONFIG]
    run_id, server_round = str(config[keys.RUN_ID]), int(config[keys.SERVER_ROUND])
    x, y = examples
    n = len(y)
    privacy = site.config.privacy
    rate, steps = sample_rate(n, plan.batch_size), steps_per_round(n, plan)
    if privacy.enabled:
        rounds_left = int(config[keys.NUM_ROUNDS]) - server_round + 1
        sigma = site.ledger.plan_noise(
            run_id, privacy.epsilon_budget, privacy.delta, rate, rounds_left * steps
        )
        projected = site.ledger.epsilon(privacy.delta, [(sigma, rate, steps)])
        if projected > privacy.epsilon_budget:
            return excluded(
                message,
                site.name,
                f"privacy budget: this round would reach epsilon {projected:.3f} "
                f"> budget {privacy.epsilon_budget}",
            )
        plan = TrainPlan(**{**plan.__dict__, "noise_multiplier": sigma})
    generator = site.noise.torch_generator("dp-sgd", server_round) if privacy.enabled else None
    outcome = train(model, x, y, plan, generator=generator)
    update = ReleasedUpdate(outcome.state_dict, outcome.loss, n, table_version)
    # Kept before it is paid for, replayed only once paid for: a site killed between the
    # two trains the round again, one killed after replays it, and neither refuses a
    # resumed run for a round whose update never left.
    ReleasedUpdates(site.config.store_dir).keep(run_id, digest, update)
    site.ledger.record(
        LedgerEntry(
            noise_multiplier=plan.noise_multiplier or 0.0,
            sample_rate=outcome.sample_rate,
            steps=outcome.steps,
            delta=privacy.delta,
            run_id=run_id,
            round=server_round,
            table_version=table_version,
            mechanism="dp-sgd" if privacy.enabled else "no-dp",
        )
    )
    return update


def _audit_train(site: Site, message: Message, reply: Message) -> None:
    """One audit entry per training request: trained, or refused and why."""
    config = message.content[keys.CONFIG]
    run_id, server_round = str(config.get(keys.RUN_ID, "")), int(config.get(keys.SERVER_ROUND, 0))
    where = {"run": run_id, "round": server_round}
    if keys.EXCLUDED in reply.content:
        reason = str(reply.content[keys.EXCLUDED][keys.REASON])
        action = "refuse-budget" if reason.startswith("privacy budget") else "refuse"
        site_audit(site.config).append(action, reason=reason, **where)
        return
    metrics = reply.content[keys.METRICS]
    site_audit(site.config).append(
        "train",
        table_version=int(reply.content[keys.SITE][keys.TABLE_VERSION]),
        num_examples=int(metrics[keys.NUM_EXAMPLES]),
        epsilon=float(metrics[keys.EPSILON]),
        **where,
    )


def _update_reply(
    message: Message, site: Site, update: ReleasedUpdate, keys_folder: Path
) -> Message:
    privacy = site.config.privacy
    epsilon = site.ledger.epsilon(privacy.delta)
    # The loss of DP-SGD's own batches is no DP release: it stays home while DP is on.
    loss = math.nan if privacy.enabled else update.loss
    metrics = TrainMetrics(
        num_examples=released_count(site, update.num_examples), train_loss=loss, epsilon=epsilon
    )
    site_record = site_record_of(site, update.table_version)
    config = message.content[keys.CONFIG]
    if bool(config.get(keys.HE, False)):  # encrypted aggregation: ciphertexts, no arrays
        key = str(config[keys.HE_KEY_ID])
        chunks = he.encrypt(he.context_for(config, keys_folder), he.flatten(update.state_dict))
        encrypted = EncryptedRecord(chunks=chunks, key_id=key)
        he_reply = EncryptedTrainReply(encrypted=encrypted, metrics=metrics, site=site_record)
        return Message(he_reply.to_content(), reply_to=message)
    reply = TrainReply(arrays=ArrayRecord(update.state_dict), metrics=metrics, site=site_record)
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


def _global_model(message: Message, spec: FeatureSpec, keys_folder: Path) -> torch.nn.Module:
    """The model the message carries; under encrypted aggregation the site checks its key
    first and decrypts the global model (round 1's initial model comes in the clear)."""
    config = message.content[keys.CONFIG]
    model = build_model(str(config[keys.MODEL]), spec.num_features, spec.num_classes)
    if bool(config.get(keys.HE, False)):
        ctx = he.context_for(config, keys_folder)
        if keys.ENCRYPTED in message.content:
            chunks = list(message.content[keys.ENCRYPTED][keys.CHUNKS])
            model.load_state_dict(he.decrypt_state(ctx, chunks, model.state_dict()))
            return model
    model.load_state_dict(message.content[keys.ARRAYS].to_torch_state_dict())
    return model


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


app = make_client_app()
