"""Two runs training one site at once cannot spend past its budget together.

Each run plans its noise to reach the budget exactly with its last round. Without a
lock spanning the check and the record, both pass the check on the same history and
the ledger ends above the budget.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from client.federation.train_round import train_reply
from client.site import Site
from common import keys
from tests.privacy.conftest import make_site, train_message


def _train_once(path: str, run_id: str, start) -> bool:
    site = Site.from_path(Path(path))
    message = train_message(site, run_id=run_id, server_round=10)  # the run's last round
    start.wait()
    return keys.EXCLUDED not in train_reply(site, message, site.config.base_dir).content


def test_concurrent_trainings_never_pass_the_budget(tmp_path, dataset):
    site = make_site(tmp_path, dataset)
    path = str(tmp_path / "site-000" / "site.toml")
    context = multiprocessing.get_context("spawn")
    start = context.Manager().Barrier(2)
    with context.Pool(2) as pool:
        trained = pool.starmap(_train_once, [(path, "run-a", start), (path, "run-b", start)])

    budget = site.config.privacy.epsilon_budget
    assert trained.count(True) >= 1
    assert site.ledger.epsilon(site.config.privacy.delta) <= budget
