"""The coordinator notices a site whose ledger and audit log went back together.

A site alone cannot tell that both of its chains were removed (or rolled back) at
once; its replies carry its audit head, which the coordinator keeps per site across
runs (``server.site_heads``).
"""

from __future__ import annotations

import logging
import shutil

from client.federation.train_round import train_reply
from client.site import Site
from common import keys
from server.federation import Federation
from server.round_report import RoundReport
from server.site_heads import SiteHeads
from tests.privacy.conftest import make_site, train_message

STORE = "0123456789abcdef"
A, B = "a" * 64, "b" * 64


def test_a_head_that_moves_forward_is_remembered_across_runs(tmp_path):
    assert SiteHeads(tmp_path).check("s", STORE, f"3:{A}") == ""
    assert SiteHeads(tmp_path).check("s", STORE, f"5:{B}") == ""
    assert SiteHeads(tmp_path).read()["s"] == {"store_id": STORE, "seq": 5, "hash": B}


def test_a_head_behind_the_remembered_one_is_refused_and_stays_refused(tmp_path):
    heads = SiteHeads(tmp_path)
    heads.check("s", STORE, f"5:{A}")
    assert "audit log went back" in heads.check("s", STORE, f"2:{B}")
    # appending past the old seq does not clear it: the chain it extends is another
    assert "audit log went back" in SiteHeads(tmp_path).check("s", STORE, f"9:{A}")
    assert SiteHeads(tmp_path).check("other", STORE, f"1:{A}") == ""


def test_the_same_seq_with_another_hash_is_refused(tmp_path):
    SiteHeads(tmp_path).check("s", STORE, f"5:{A}")
    assert SiteHeads(tmp_path).check("s", STORE, f"5:{A}") == ""
    assert "audit log went back" in SiteHeads(tmp_path).check("s", STORE, f"5:{B}")


def test_a_new_store_is_a_new_site_with_a_log_line(tmp_path, caplog):
    SiteHeads(tmp_path).check("s", STORE, f"5:{A}")
    with caplog.at_level(logging.INFO, logger="fedlife.site_heads"):
        assert SiteHeads(tmp_path).check("s", "f" * 16, f"1:{B}") == ""
    assert "new store" in caplog.text
    assert SiteHeads(tmp_path).read()["s"]["seq"] == 1


def test_an_older_site_without_a_head_is_not_checked(tmp_path):
    assert SiteHeads(tmp_path).check("s", None, None) == ""
    assert not (tmp_path / "site-audit-heads.json").exists()


def test_removing_the_ledger_and_the_audit_log_together_is_noticed_at_the_next_run(
    tmp_path, dataset
):
    site = make_site(tmp_path, dataset)
    heads = SiteHeads(tmp_path / "runs")
    first = train_reply(site, train_message(site, run_id="run-1"), site.config.base_dir)
    seq, _ = str(first.content[keys.SITE][keys.AUDIT_HEAD]).split(":")
    assert int(seq) > 0
    report = RoundReport(1, 1)
    assert len(Federation.sort_replies([first], report, heads=heads)) == 1

    store = site.config.store_dir
    for chain in ("privacy", "audit"):  # both chains, heads included; the key stays
        for path in (store / chain).glob("*.json*"):
            path.unlink()
    site = Site.from_path(site.config.base_dir / "site.toml")
    second = train_reply(site, train_message(site, run_id="run-2"), site.config.base_dir)
    assert keys.EXCLUDED not in second.content  # the site alone cannot tell

    report = RoundReport(1, 1)
    assert Federation.sort_replies([second], report, heads=SiteHeads(tmp_path / "runs")) == []
    assert "audit log went back" in report.excluded[0]["reason"]


def test_a_recreated_store_is_not_refused(tmp_path, dataset):
    site = make_site(tmp_path / "a", dataset)
    heads = SiteHeads(tmp_path / "runs")
    for _ in range(2):
        reply = train_reply(site, train_message(site, run_id="run-1"), site.config.base_dir)
        assert Federation.sort_replies([reply], RoundReport(1, 1), heads=heads)
    shutil.rmtree(tmp_path / "a")
    site = make_site(tmp_path / "a", dataset)  # same name, a new store and key
    reply = train_reply(site, train_message(site, run_id="run-2"), site.config.base_dir)
    assert Federation.sort_replies([reply], RoundReport(1, 1), heads=heads)
