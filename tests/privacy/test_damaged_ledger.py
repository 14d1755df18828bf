"""A site whose privacy ledger is missing, truncated or edited refuses, never resets.

Training and releases are refused with one line naming the ledger (the round goes on
without the site), and ``fedlife-site budget`` fails with one line instead of
reporting 0 spent.
"""

from __future__ import annotations

import shutil

import pytest
from flwr.app import Context, RecordDict

from client.app import make_client_app
from client.site import Site
from common import keys
from tests.privacy.conftest import make_site, moments_message, train_message


def _delete(ledger_dir):
    (ledger_dir / "ledger.jsonl").unlink()
    (ledger_dir / "ledger-head.json").unlink()


def _truncate(ledger_dir):
    path = ledger_dir / "ledger.jsonl"
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")


def _edit(ledger_dir):
    path = ledger_dir / "ledger.jsonl"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace('"noise_multiplier": ', '"noise_multiplier": 9', 1)
    path.write_text("\n".join(lines) + "\n")


DAMAGE = {"deleted": _delete, "truncated": _truncate, "edited": _edit}


@pytest.fixture(scope="module")
def trained_site(tmp_path_factory, dataset):
    """A site that trained two rounds: a ledger with two releases."""
    root = tmp_path_factory.mktemp("trained")
    site = make_site(root, dataset)
    app, context = _app(site)
    for server_round in (1, 2):
        reply = app(train_message(site, run_id="r", server_round=server_round), context)
        assert keys.EXCLUDED not in reply.content
    return site


def _app(site):
    config_path = str(site.config.base_dir / "site.toml")
    return make_client_app(), Context(1, 1, {"site-config": config_path}, RecordDict(), {})


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_ledger_refuses_training_and_releases(trained_site, damage, tmp_path):
    copy = tmp_path / "site"
    shutil.copytree(trained_site.config.base_dir, copy, symlinks=True)
    site = Site.from_path(copy / "site.toml")
    DAMAGE[damage](site.config.store_dir / "privacy")
    app, context = _app(site)

    for message in (
        train_message(site, run_id="r2", server_round=3),
        moments_message(site, run_id="r2"),
    ):
        reply = app(message, context)
        assert keys.EXCLUDED in reply.content
        reason = str(reply.content[keys.EXCLUDED][keys.REASON])
        assert "ledger.jsonl" in reason and "\n" not in reason


def test_budget_of_a_deleted_ledger_is_one_line_not_zero(trained_site, cli, assert_one_line_error):
    copy = trained_site.config.base_dir.parent / "deleted-copy"
    shutil.copytree(trained_site.config.base_dir, copy, symlinks=True)
    _delete(
        copy / trained_site.config.store_dir.relative_to(trained_site.config.base_dir) / "privacy"
    )

    result = cli("fedlife-site", "budget", "-c", copy / "site.toml")
    assert_one_line_error(result, "ledger.jsonl")


def test_a_first_release_stopped_before_its_head_file_still_counts(tmp_path):
    """Killed between the ledger's first line and its head file: the release is whole
    and is counted, not refused as a removed head."""
    from client.privacy.ledger_chain import LedgerChain

    chain = LedgerChain(tmp_path)
    chain.append({"mechanism": "dp-sgd", "round": 1})
    chain.chain.head_path.unlink()
    assert LedgerChain(tmp_path).releases() == [{"mechanism": "dp-sgd", "round": 1}]
