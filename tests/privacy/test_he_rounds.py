"""Encrypted rounds between a real site (its ClientApp) and the coordinator's round code.

The coordinator side holds only what it holds in a run: the run directory with the
public context. A tampered ciphertext or a key from another provisioning excludes that
site with the reason; the other sites' updates are still summed.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, RecordDict

pytest.importorskip("tenseal")

from client.app import make_client_app  # noqa: E402
from client.federation.final_model import export_final_model  # noqa: E402
from client.privacy import he  # noqa: E402
from client.privacy.egress import describe  # noqa: E402
from common import keys  # noqa: E402
from common.errors import EncryptionError, RunDirError  # noqa: E402
from common.features import FeatureSpec  # noqa: E402
from common.he_keys import PUBLIC_CONTEXT_FILE, SECRET_CONTEXT_FILE, provision  # noqa: E402
from common.models import build_model  # noqa: E402
from common.wire.encrypted import EncryptedRecord  # noqa: E402
from common.wire.messages import EncryptedTrainReply, TrainMetrics  # noqa: E402
from server.he_rounds import EncryptedRounds, read_chunks  # noqa: E402
from server.registry.registry import Registry  # noqa: E402
from server.replies import read, sorted_replies  # noqa: E402
from server.round_report import RoundReport  # noqa: E402
from server.run_dir import RunDirectory  # noqa: E402
from tests.privacy.conftest import incoming, make_site, train_message  # noqa: E402
from tests.wire_replies import reply, site_record  # noqa: E402

NUM_VALUES = 62  # logreg on the demo's 30 features, 2 classes
TEMPLATE = ArrayRecord([np.zeros((2, 30)), np.zeros(2)])


@pytest.fixture(scope="module")
def federation(tmp_path_factory, dataset):
    """One site and a coordinator run directory, provisioned with one key."""
    root = tmp_path_factory.mktemp("he")
    site = make_site(root / "site", dataset)
    run_dir = RunDirectory.create(root / "run")
    provision([site.config.base_dir], run_dir.path)
    return site, run_dir


def _context(site, bundle=None) -> Context:
    node_config = {"site-config": str(site.config.base_dir / "site.toml")}
    if bundle is not None:  # fedlife-site join names the site's bundle
        node_config[keys.BUNDLE] = str(bundle)
    return Context(1, 1, node_config, RecordDict(), {})


def _he_message(site, rounds: EncryptedRounds, server_round: int = 1):
    message = train_message(site, run_id="he", server_round=server_round)
    rounds.round_config(message.content[keys.CONFIG])
    return rounds.attach([message])[0]


def _encrypted_reply(chunks: list[bytes], key_id: str, name: str, node: int):
    metrics = TrainMetrics(num_examples=40, train_loss=float("nan"), epsilon=0.5)
    record = EncryptedRecord(chunks=chunks, key_id=key_id)
    content = EncryptedTrainReply(encrypted=record, metrics=metrics, site=site_record(name))
    return reply(content.to_content(), node=node)


def test_a_site_trains_on_the_encrypted_model_and_answers_ciphertexts(federation):
    site, run_dir = federation
    rounds = EncryptedRounds(run_dir, TEMPLATE)
    app, context = make_client_app(), _context(site)

    first = app(_he_message(site, rounds), context)
    assert keys.ARRAYS not in first.content, "an encrypted round sends no plaintext update"
    logged = describe(first)[keys.ENCRYPTED]["values"][keys.CHUNKS]  # the egress log's line
    assert logged == [f"<{len(c)} bytes>" for c in first.content[keys.ENCRYPTED][keys.CHUNKS]]
    contract, check = rounds.contract()
    valid = sorted_replies([first], contract, check, RoundReport(1, 2))
    assert len(valid) == 1
    rounds.aggregate([valid[0].message])
    ctx, _ = he.site_context(site.config.base_dir)
    sent = he.decrypt(ctx, list(first.content[keys.ENCRYPTED][keys.CHUNKS]))
    summed = he.decrypt(ctx, rounds.model)
    assert np.max(np.abs(summed - sent)) < 1e-4  # one site: the sum is its update (CKKS precision)

    second = app(_he_message(site, rounds, server_round=2), context)  # decrypts, then trains
    assert keys.EXCLUDED not in second.content, second.content
    assert len(sorted_replies([second], contract, check, RoundReport(2, 2))) == 1

    rounds.checkpoint(1)
    assert read_chunks(run_dir.path / "models" / "round-001.he") == rounds.model
    assert EncryptedRounds(run_dir, TEMPLATE, resume_after=1).model == rounds.model  # resume
    truncated = run_dir.path / "models" / "round-009.he"
    truncated.write_bytes((run_dir.path / "models" / "round-001.he").read_bytes()[:-10])
    with pytest.raises(RunDirError, match="truncated"):
        EncryptedRounds(run_dir, TEMPLATE, resume_after=9)


def test_tampered_or_foreign_ciphertexts_exclude_only_that_site(federation):
    site, run_dir = federation
    rounds = EncryptedRounds(run_dir, TEMPLATE)
    ctx, key = he.site_context(site.config.base_dir)
    good = he.encrypt(ctx, np.ones(NUM_VALUES))
    tampered = [good[0][:100] + bytes(b ^ 0xFF for b in good[0][100:200]) + good[0][200:]]
    ts = pytest.importorskip("tenseal")
    other_params = ts.context(
        ts.SCHEME_TYPE.CKKS, 16384, -1, [60, 40, 40, 60]
    )  # another provisioning
    other_params.global_scale = 2**40
    replies = [
        _encrypted_reply(good, key, "site-000", node=1),
        _encrypted_reply(tampered, key, "site-001", node=2),
        _encrypted_reply(he.encrypt(other_params, np.ones(NUM_VALUES)), key, "site-002", node=3),
        _encrypted_reply(good, "0123456789abcdef", "site-003", node=4),
        _encrypted_reply(good + good, key, "site-004", node=5),
    ]
    report = RoundReport(1, 1)
    contract, check = rounds.contract()
    valid = sorted_replies(replies, contract, check, report)

    assert [v.site for v in valid] == ["site-000"]
    reasons = {e["site"]: e["reason"] for e in report.excluded}
    assert "tampered or foreign ciphertext" in reasons["site-001"]
    assert "not the federation's" in reasons["site-003"]
    assert "2 ciphertexts, the model needs 1" in reasons["site-004"]
    assert "tampered or foreign ciphertext" in reasons["site-002"]
    rounds.aggregate([v.message for v in valid])
    assert np.max(np.abs(he.decrypt(ctx, rounds.model) - 1.0)) < 1e-4


def test_a_site_with_another_key_or_no_secret_context_refuses_with_the_reason(
    tmp_path, dataset, federation
):
    _, run_dir = federation
    rounds = EncryptedRounds(run_dir, TEMPLATE)
    site = make_site(tmp_path / "other", dataset)
    app = make_client_app()

    missing = app(_he_message(site, rounds), _context(site))
    assert SECRET_CONTEXT_FILE in str(missing.content[keys.EXCLUDED][keys.REASON])

    provision([site.config.base_dir], tmp_path / "elsewhere")  # another provisioning
    foreign = app(_he_message(site, rounds), _context(site))
    assert "not the federation's" in str(foreign.content[keys.EXCLUDED][keys.REASON])

    evaluate = _he_message(site, rounds)
    config = ConfigRecord(dict(evaluate.content[keys.CONFIG]))
    refused = app(
        incoming(RecordDict({**dict(evaluate.content.items()), keys.CONFIG: config}), "evaluate"),
        _context(site),
    )
    assert "not the federation's" in str(refused.content[keys.EXCLUDED][keys.REASON])


def test_a_deployed_site_loads_its_secret_context_from_its_bundle(tmp_path, dataset, federation):
    """The ClientApp reads the bundle join names, not the folder of site.toml; a bundle
    context with other parameters is refused naming both parameter sets."""
    ts = pytest.importorskip("tenseal")
    provisioned, run_dir = federation
    rounds = EncryptedRounds(run_dir, TEMPLATE)
    site = make_site(tmp_path / "deployed", dataset)  # no context beside its site.toml
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    secret = provisioned.config.base_dir / SECRET_CONTEXT_FILE
    (bundle / SECRET_CONTEXT_FILE).write_bytes(secret.read_bytes())
    app = make_client_app()

    trained = app(_he_message(site, rounds), _context(site, bundle))
    assert keys.EXCLUDED not in trained.content, trained.content
    assert keys.ENCRYPTED in trained.content

    other = ts.context(ts.SCHEME_TYPE.CKKS, 16384, -1, [60, 40, 40, 60])
    (bundle / SECRET_CONTEXT_FILE).write_bytes(other.serialize(save_secret_key=True))
    refused = app(_he_message(site, rounds, server_round=2), _context(site, bundle))
    reason = str(refused.content[keys.EXCLUDED][keys.REASON])
    assert "CKKS degree 16384, 200-bit modulus" in reason
    assert "the coordinator's CKKS degree 8192, 160-bit modulus" in reason


def test_the_coordinator_needs_a_public_context_and_refuses_a_secret_one(tmp_path, federation):
    site, _ = federation
    empty = RunDirectory.create(tmp_path / "empty")
    with pytest.raises(EncryptionError, match=PUBLIC_CONTEXT_FILE):
        EncryptedRounds(empty, TEMPLATE)
    secret = (site.config.base_dir / SECRET_CONTEXT_FILE).read_bytes()
    (empty.path / PUBLIC_CONTEXT_FILE).write_bytes(secret)
    with pytest.raises(EncryptionError, match="secret key"):
        EncryptedRounds(empty, TEMPLATE)


class LocalSites:
    """The sites' ClientApps answering the coordinator's queries in this process: Flower's
    transport left out (the deployment test runs it), the ClientApp and contracts real."""

    def __init__(self, app, contexts: list[Context]) -> None:
        self.app, self.contexts = app, contexts

    def query(self, config: dict, contract, context=None):
        answers, refused = [], []
        for node, site_context in enumerate(self.contexts, start=1):
            message = incoming(RecordDict({keys.CONFIG: ConfigRecord(config)}), "query")
            sorted_reply = read(
                reply(self.app(message, site_context).content, node), contract, context
            )
            if sorted_reply.excluded is not None:
                refused.append(sorted_reply.excluded)
            else:
                answers.append(sorted_reply.message)
        return answers, refused


def test_the_final_model_is_decrypted_for_the_registry_only_by_consent_once_per_run(
    tmp_path, cli, assert_one_line_error, federation
):
    """finish(): a site decrypts the final model only with decrypt_final_for_coordinator,
    once per run; the registry then exports it. fedlife-site model export decrypts it at
    a site into the same bundle files."""
    site, provisioned_run = federation
    run = RunDirectory.create(tmp_path / "run")
    shutil.copy(provisioned_run.path / PUBLIC_CONTEXT_FILE, run.path / PUBLIC_CONTEXT_FILE)
    message = train_message(site, run_id="he")  # a run the site trained in
    config = message.content[keys.CONFIG]
    spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
    model = build_model("logreg", spec.num_features, spec.num_classes, seed=3)
    template = ArrayRecord(model.state_dict())
    run.update_info(
        run_id="he", feature_spec=spec.to_json(), config={"model": "logreg", "he": True}
    )
    rounds = EncryptedRounds(run, template)
    run.update_info(he_key_id=rounds.key_id)
    ctx, _ = he.site_context(site.config.base_dir)
    rounds.model, rounds.last_round = he.encrypt(ctx, he.flatten(model.state_dict())), 2
    app = make_client_app()
    sites = LocalSites(app, [_context(site)])
    trained = app(_he_message(site, EncryptedRounds(provisioned_run, TEMPLATE)), _context(site))
    assert keys.EXCLUDED not in trained.content  # the site trained in run 'he' (or replayed)
    with pytest.raises(RunDirError, match="fedlife-site model export"):
        Registry(run.path).load(None)  # nothing decrypted: the registry says where to go

    kept = rounds.finish(sites, rounds.round_config(config), template, ask=True)
    assert kept == {} and not (run.path / "model.pt").exists()
    assert run.info()["final_model"] == "encrypted (no site agreed)"
    assert "decrypt_final_for_coordinator is off" in run.info()["decrypt_refused"][0]["reason"]

    toml = site.config.base_dir / "site.toml"
    toml.write_text(
        toml.read_text().replace("[privacy]\n", "[privacy]\ndecrypt_final_for_coordinator = true\n")
    )
    made_up = ConfigRecord({**dict(rounds.round_config(config)), keys.RUN_ID: "made-up"})
    assert rounds.finish(sites, made_up, template, ask=True) == {}
    assert "trained in no round of run made-up" in run.info()["decrypt_refused"][0]["reason"]
    final = rounds.finish(sites, rounds.round_config(config), template, ask=True)
    for name, tensor in model.state_dict().items():
        assert torch.max(torch.abs(final[name] - tensor)) < 1e-4
    assert run.info()["final_model"] == "decrypted" and run.info()["decrypted_by"] == [site.name]
    assert run.info()["decrypt_refused"] == []
    exported = Registry(run.path).export(None, tmp_path / "registry")
    assert {p.name for p in exported} == {
        "model_state_dict.pt",
        "model.torchscript.pt",
        "feature_spec.json",
        "lineage.json",
    }
    again = rounds.finish(sites, rounds.round_config(config), template, ask=True)
    assert again == {} and "decrypted once already" in run.info()["decrypt_refused"][0]["reason"]

    out = tmp_path / "at-site"
    written = export_final_model(toml, run.path, out)
    assert [p.name for p in written] == [p.name for p in exported]
    state = torch.load(out / "model_state_dict.pt", weights_only=True)
    for name, tensor in model.state_dict().items():
        assert torch.max(torch.abs(state[name] - tensor)) < 1e-4
    assert json.loads((out / "lineage.json").read_text())["decrypted_by"] == site.name
    no_key = cli(
        "fedlife-site",
        "model",
        "export",
        "-c",
        toml,
        "--run",
        run.path,
        "--out",
        tmp_path / "x",
        "--bundle",
        tmp_path,
    )
    assert_one_line_error(no_key, SECRET_CONTEXT_FILE, "missing")
    assert not (tmp_path / "x").exists()
