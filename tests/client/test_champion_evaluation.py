"""A site evaluates champion and challenger in one evaluate message, on the same rows:
the real ClientApp on a real prepared site."""

from __future__ import annotations

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, RecordDict

from client.app import make_client_app
from common import keys
from tests.privacy.conftest import dataset, incoming, make_site, train_message  # noqa: F401


def _evaluate(site, champion: ArrayRecord | None):
    train = train_message(site, run_id="r")
    content = RecordDict(
        {
            keys.ARRAYS: train.content[keys.ARRAYS],
            keys.CONFIG: ConfigRecord(dict(train.content[keys.CONFIG])),
        }
    )
    if champion is not None:
        content[keys.CHAMPION_ARRAYS] = champion
    context = Context(
        1, 1, {"site-config": str(site.config.base_dir / "site.toml")}, RecordDict(), {}
    )
    return make_client_app()(incoming(content, "evaluate"), context), train


def test_both_models_on_the_same_rows(tmp_path, dataset):  # noqa: F811
    site = make_site(tmp_path, dataset)
    plain, train = _evaluate(site, None)
    assert keys.CHAMPION_METRICS not in plain.content  # an ordinary evaluate is unchanged

    same, _ = _evaluate(site, train.content[keys.ARRAYS])
    challenger, champion = same.content[keys.METRICS], same.content[keys.CHAMPION_METRICS]
    for name in ("accuracy", "loss", "f1", keys.NUM_EXAMPLES):
        assert champion[name] == challenger[name]  # one model twice: the same rows, same numbers
    assert keys.CHAMPION_FAIRNESS in same.content

    # While privacy is on both are coarsened alike; without it the numbers are exact.
    toml = site.config.base_dir / "site.toml"
    toml.write_text(toml.read_text().replace("enabled = true", "enabled = false"))
    arrays = train.content[keys.ARRAYS]
    zeroed = ArrayRecord({k: Array(np.zeros_like(v.numpy())) for k, v in arrays.items()})
    differs, _ = _evaluate(site, zeroed)
    assert differs.content[keys.CHAMPION_METRICS]["loss"] != differs.content[keys.METRICS]["loss"]
    assert (
        differs.content[keys.CHAMPION_METRICS][keys.NUM_EXAMPLES]
        == differs.content[keys.METRICS][keys.NUM_EXAMPLES]
    )
