"""A site's answer to a train message: the update of one DP-SGD round, or a refusal.

The replay check, the budget's projection, training, keeping the update and recording
it in the privacy ledger happen under the ledger's lock (see :func:`train_reply`).
Loaded by the ClientApp only for train messages: torch and Opacus are the cost.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from flwr.app import ArrayRecord, Message

from client.federation.global_model import received_model
from client.federation.site_replies import excluded, released_count, site_record_of
from client.federation.training import TrainPlan, sample_rate, steps_per_round, train
from client.node import derive_seed
from client.privacy import he
from client.privacy.ledger import LedgerEntry
from client.privacy.released import ReleasedUpdate, ReleasedUpdates, request_digest
from client.privacy.subjects import one_row_per_subject
from client.site import Site
from client.site_audit import site_audit
from common import keys
from common.features import FeatureSpec
from common.wire.encrypted import EncryptedRecord
from common.wire.messages import EncryptedTrainReply, TrainMetrics, TrainReply


def train_reply(site: Site, message: Message, keys_folder: Path) -> Message:
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
    model = received_model(message, spec, keys_folder)
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


def audit_train(site: Site, message: Message, reply: Message) -> None:
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
