"""A site stopped anywhere inside a training round answers the resumed request.

A round's update is kept, then paid for in the ledger, then sent. A coordinator that
resumes asks for the round again. Stopped before the payment, the site trains again (no
update left it); stopped after, it replays the kept update (it paid for it). Either way
it pays once and never refuses a round it was asked for. The round is the run's last,
so its noise is planned to spend the whole budget: paying twice would be refused.
"""

from __future__ import annotations

import pytest
import torch

import client.federation.train_round
from client.federation.train_round import train_reply
from client.privacy.ledger import TRAINING, PrivacyLedger
from client.privacy.released import ReleasedUpdates
from common import keys
from tests.privacy.conftest import make_site, train_message

LAST_ROUND = 10  # train_message's run has 10 rounds


class Stopped(Exception):
    """Where the site's process would have died."""


def stop_once(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    original = getattr(owner, name)

    def stopped(*args, **kwargs):
        monkeypatch.setattr(owner, name, original)
        raise Stopped(name)

    monkeypatch.setattr(owner, name, stopped)


@pytest.mark.parametrize(
    ("owner", "name", "replayed"),
    [
        (ReleasedUpdates, "keep", False),  # trained, nothing kept or paid
        (PrivacyLedger, "record", False),  # kept, not paid: that update must never leave
        (client.federation.train_round, "_update_reply", True),  # kept and paid, not sent
    ],
    ids=["before-keep", "before-record", "before-reply"],
)
def test_a_round_stopped_anywhere_is_answered_once_paid_once(
    tmp_path, dataset, monkeypatch, owner, name, replayed
):
    site = make_site(tmp_path, dataset)
    message = train_message(site, run_id="run", server_round=LAST_ROUND)
    kept: list[dict[str, torch.Tensor]] = []
    keep = ReleasedUpdates.keep

    def keep_and_note(self, run_id, digest, update):
        keep(self, run_id, digest, update)
        kept.append(update.state_dict)

    monkeypatch.setattr(ReleasedUpdates, "keep", keep_and_note)
    stop_once(monkeypatch, owner, name)
    with pytest.raises(Stopped):
        train_reply(site, message, site.config.base_dir)
    kept_before = len(kept)

    reply = train_reply(site, message, site.config.base_dir)

    assert keys.EXCLUDED not in reply.content, reply.content[keys.EXCLUDED]
    rounds = [e.round for e in site.ledger.entries() if e.mechanism in TRAINING]
    assert rounds == [LAST_ROUND]
    assert site.ledger.epsilon(site.config.privacy.delta) <= site.config.privacy.epsilon_budget
    assert len(kept) == kept_before + (0 if replayed else 1)  # trained again or not
    sent = reply.content[keys.ARRAYS].to_torch_state_dict()
    assert all(torch.equal(sent[k], kept[-1][k]) for k in sent)  # the update paid for
