"""A replayed training request gets back the update already released, nothing new."""

from __future__ import annotations

import torch

from client.privacy.released import ReleasedUpdate, ReleasedUpdates, request_digest
from common.models import build_model


def test_identical_request_replays_and_any_difference_does_not(tmp_path):
    released = ReleasedUpdates(tmp_path)
    model = build_model("logreg", 3, 2, seed=0).state_dict()
    digest = request_digest(model, "run", 4)
    update = ReleasedUpdate({"weight": torch.ones(2, 3)}, 0.5, 40, 1)
    released.keep("run", digest, update)

    again = released.find("run", request_digest(model, "run", 4))
    assert again is not None and torch.equal(again.state_dict["weight"], torch.ones(2, 3))
    assert (again.loss, again.num_examples, again.table_version) == (0.5, 40, 1)

    other_model = build_model("logreg", 3, 2, seed=1).state_dict()
    assert released.find("run", request_digest(other_model, "run", 4)) is None
    assert released.find("run", request_digest(model, "run", 5)) is None
    assert released.find("other-run", digest) is None


def test_unreadable_cache_means_training_again(tmp_path):
    released = ReleasedUpdates(tmp_path)
    released.dir.mkdir(parents=True)
    (released.dir / "run.pt").write_bytes(b"garbage")
    assert released.find("run", "digest") is None
