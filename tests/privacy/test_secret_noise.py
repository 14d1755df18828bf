"""The coordinator, holding everything it is sent and sends, cannot regenerate a site's noise.

Before sites drew their DP randomness from a secret, training seeded Opacus's noise
and Poisson sampling with ``crc32(repr((run seed, round, site name)))``: all public.
The adversary here knows even the site's rows, its model and its noise multiplier
(the ledger's plan is deterministic), so the only thing it lacks is the randomness.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch

from client.federation.site_replies import moments_reply
from client.federation.train_round import train_reply
from client.federation.training import TrainPlan, train
from client.privacy.randomness import NoiseSource, secret_path
from common import keys
from common.features import FeatureSpec
from common.models import build_model
from tests.privacy.conftest import SEED, make_site, moments_message, train_message


def _update(reply) -> dict[str, np.ndarray]:
    assert keys.EXCLUDED not in reply.content, reply.content
    return {k: v.numpy() for k, v in reply.content[keys.ARRAYS].to_torch_state_dict().items()}


def _max_difference(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def _old_seed(*parts: object) -> int:
    """The derivation sites used before: public inputs only."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF


def _coordinator_replay(site, message, seed: int) -> dict[str, np.ndarray]:
    """Train as the site did, with the site's own rows and sigma, from ``seed``."""
    config = message.content[keys.CONFIG]
    spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
    data = site.data(spec, SEED)
    sigma = next(iter(site.ledger._plans().values()))["sigma"]
    model = build_model("logreg", spec.num_features, spec.num_classes)
    model.load_state_dict(message.content[keys.ARRAYS].to_torch_state_dict())
    plan = TrainPlan(1, 16, 0.5, 1.0, sigma, "hooks", 0.0, 0.5, seed)
    outcome = train(model, data.x_train, data.y_train, plan)
    return {k: v.numpy() for k, v in outcome.state_dict.items()}


def test_the_old_public_derivation_no_longer_regenerates_the_update(tmp_path, dataset):
    site = make_site(tmp_path, dataset)
    message = train_message(site, run_id="run-a")
    released = _update(train_reply(site, message, site.config.base_dir))

    guess = _coordinator_replay(site, message, _old_seed(SEED, 1, site.name))
    again = _coordinator_replay(site, message, _old_seed(SEED, 1, site.name))

    # The replay is deterministic, so a site still seeding publicly would match exactly.
    assert _max_difference(guess, again) == 0.0
    assert _max_difference(guess, released) > 1e-3


def test_two_releases_of_identical_data_never_share_noise(tmp_path, dataset):
    site = make_site(tmp_path, dataset)
    first = _update(train_reply(site, train_message(site, run_id="run-a"), site.config.base_dir))
    second = _update(train_reply(site, train_message(site, run_id="run-b"), site.config.base_dir))
    assert _max_difference(first, second) > 1e-3

    one = moments_reply(site, moments_message(site, run_id="run-a"))
    two = moments_reply(site, moments_message(site, run_id="run-b"))
    assert dict(one.content[keys.MOMENTS]) != dict(two.content[keys.MOMENTS])


def test_reproducible_sites_repeat_bit_for_bit(tmp_path, dataset):
    sites = [make_site(tmp_path / name, dataset, reproducible_seed=3) for name in "ab"]
    updates = [
        _update(train_reply(s, train_message(s, run_id="run"), s.config.base_dir)) for s in sites
    ]
    assert _max_difference(*updates) == 0.0


def test_the_secret_is_the_sites_own(tmp_path, dataset):
    site = make_site(tmp_path, dataset)
    path = secret_path(site.config.store_dir)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    other = make_site(tmp_path / "other", dataset)
    assert path.read_bytes() != secret_path(other.config.store_dir).read_bytes()


def test_fresh_draws_differ_and_reproducible_ones_repeat():
    secret = bytes(32)
    fresh, fixed = NoiseSource(secret), NoiseSource(secret, fresh=False)
    assert not torch.equal(
        torch.randn(8, generator=fresh.torch_generator("x")),
        torch.randn(8, generator=fresh.torch_generator("x")),
    )
    assert torch.equal(
        torch.randn(8, generator=fixed.torch_generator("x")),
        torch.randn(8, generator=fixed.torch_generator("x")),
    )
    assert not torch.equal(
        torch.randn(8, generator=fixed.torch_generator("x")),
        torch.randn(8, generator=fixed.torch_generator("y")),
    )
