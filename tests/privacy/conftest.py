"""A real site (raw CSV, ``prepare``, Delta store) and the messages a coordinator sends it.

The tests in this folder play the coordinator: they hold exactly what it holds (the
run config and its seed, every message, the sites' names) and try to undo the noise.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flwr.app import ArrayRecord, ConfigRecord, Message, RecordDict

from client.pipeline.prepare import prepare
from client.site import Site
from common import keys
from common.config import load_site_config
from common.features import FeatureSpec
from common.models import build_model
from common.wire.delivered import delivered
from simulations.data.datasets import breast_cancer
from simulations.data.sites import write_site

ROWS = 120
SEED = 0


@pytest.fixture(scope="session")
def dataset():
    return breast_cancer()


def make_site(root: Path, dataset, *, reproducible_seed: int | None = None) -> Site:
    """Site 0 of the demo's data; its store and DP secret made as a simulation makes them."""
    rows = dataset.frame[:ROWS]
    path = write_site(root, 0, rows, dataset, 3.0, 1e-5, reproducible_seed=reproducible_seed)
    prepare(load_site_config(path))
    return Site.from_path(path)


def train_message(site: Site, *, run_id: str, server_round: int = 1) -> Message:
    """What the coordinator's round loop sends a site (``Federation.round_config``)."""
    spec, _ = FeatureSpec.merge([site.declared_spec()])
    model = build_model("logreg", spec.num_features, spec.num_classes, SEED)
    config = ConfigRecord(
        {
            keys.RUN_ID: run_id,
            keys.NUM_ROUNDS: 10,
            keys.SERVER_ROUND: server_round,
            keys.SEED: SEED,
            keys.MODEL: "logreg",
            keys.FEATURE_SPEC: spec.to_json(),
            keys.LOCAL_EPOCHS: 1,
            keys.BATCH_SIZE: 16,
            keys.LEARNING_RATE: 0.5,
            keys.MOMENTUM: 0.5,
            keys.MAX_GRAD_NORM: 1.0,
            keys.GRAD_SAMPLE_MODE: "hooks",
        }
    )
    content = RecordDict({keys.ARRAYS: ArrayRecord(model.state_dict()), keys.CONFIG: config})
    return incoming(content, "train")


def moments_message(site: Site, *, run_id: str) -> Message:
    spec, _ = FeatureSpec.merge([site.declared_spec()])
    config = ConfigRecord(
        {
            keys.RUN_ID: run_id,
            keys.RELEASE: keys.MOMENTS,
            keys.SPREADS: False,
            keys.FEATURE_SPEC: spec.to_json(),
            keys.SEED: SEED,
        }
    )
    return incoming(RecordDict({keys.CONFIG: config}), "query")


def incoming(content: RecordDict, message_type: str) -> Message:
    """A message as a SuperNode hands it to the ClientApp (Flower fills the metadata)."""
    return delivered(content, message_type=message_type)
