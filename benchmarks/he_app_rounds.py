"""bench_he's ``--apps`` mode: rounds through the real ClientApp of real prepared sites.

Each virtual site is written and prepared as ``fedlife-sim`` does (raw CSV, Delta
tables, privacy ledger); a round sends every site a train message and then an evaluate
message, as the ServerApp's round loop does, minus Flower's transport: the ClientApp's
own code answers (gate, ledger, DP-SGD, replay store, audit), and the coordinator side
aggregates with FedAvg's ``aggregate_arrayrecords`` or, with HE, with
``server.he_rounds.EncryptedRounds`` (public context only).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_arrayrecords

from client.app import make_client_app
from client.pipeline.prepare import prepare
from client.site import Site
from common import keys
from common.config import load_site_config
from common.features import FeatureSpec
from common.he_keys import provision
from common.models import build_model
from common.wire.delivered import delivered
from server.he_rounds import EncryptedRounds
from server.run_dir import RunDirectory
from simulations.data.sites import write_site


def app_rounds(dataset, model_name: str, learning_rate: float, sites: int, rounds: int) -> dict:
    """Per-round seconds with and without HE (alternating), on ``sites`` prepared sites."""
    root = Path(tempfile.mkdtemp(prefix="bench-he-"))
    parts = np.array_split(np.random.default_rng(0).permutation(dataset.frame.height), sites)
    paths = [
        write_site(root / "sites", i, dataset.frame[idx.tolist()], dataset, 10.0, 1e-5)
        for i, idx in enumerate(parts)
    ]
    for path in paths:
        prepare(load_site_config(path))
    spec, _ = FeatureSpec.merge([Site.from_path(p).declared_spec() for p in paths])
    run_dir = RunDirectory.create(root / "run")
    provision([p.parent for p in paths], run_dir.path)
    template = ArrayRecord(
        build_model(model_name, spec.num_features, spec.num_classes, 0).state_dict()
    )
    app = make_client_app()
    contexts = [
        Context(1, i + 1, {"site-config": str(p)}, RecordDict(), {}) for i, p in enumerate(paths)
    ]
    plain_arrays, encrypted = template, EncryptedRounds(run_dir, template)
    times: dict[str, list[float]] = {"plain": [], "he": []}
    for server_round in range(1, rounds + 1):
        for kind in ("he", "plain") if server_round % 2 else ("plain", "he"):
            started = time.perf_counter()
            config = ConfigRecord(
                {
                    keys.RUN_ID: f"bench-{kind}",
                    # Noise planned for more rounds than run: both runs share a ledger.
                    keys.NUM_ROUNDS: 100,
                    keys.SERVER_ROUND: server_round,
                    keys.SEED: 0,
                    keys.MODEL: model_name,
                    keys.FEATURE_SPEC: spec.to_json(),
                    keys.LOCAL_EPOCHS: 1,
                    keys.BATCH_SIZE: 16,
                    keys.LEARNING_RATE: learning_rate,
                    keys.MOMENTUM: 0.5,
                    keys.MAX_GRAD_NORM: 1.0,
                    keys.GRAD_SAMPLE_MODE: "hooks",
                }
            )
            he = encrypted if kind == "he" else None
            if he:
                he.round_config(config)
            arrays = he.arrays(plain_arrays) if he else plain_arrays
            for message_kind in ("train", "evaluate"):
                messages = [
                    delivered(
                        RecordDict({keys.ARRAYS: arrays, keys.CONFIG: config}),
                        message_type=message_kind,
                        node=i + 1,
                    )
                    for i in range(sites)
                ]
                replies = [
                    app(m, c)
                    for m, c in zip(he.attach(messages) if he else messages, contexts, strict=True)
                ]
                if any(keys.EXCLUDED in r.content for r in replies):
                    raise RuntimeError(str(replies[0].content))
                if message_kind == "train":
                    if he:
                        he.aggregate(replies)
                        arrays = he.arrays(plain_arrays)
                    else:
                        plain_arrays = aggregate_arrayrecords(
                            [r.content for r in replies], keys.NUM_EXAMPLES
                        )
                        arrays = plain_arrays
            if he:
                he.checkpoint(server_round)
            else:
                run_dir.save_checkpoint(server_round, plain_arrays.to_torch_state_dict(), {})
            times[kind].append(time.perf_counter() - started)
    return {"plain_round_s": min(times["plain"]), "he_round_s": min(times["he"])}
