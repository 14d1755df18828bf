"""``fedlife-coord provision``: a CA, a server certificate that verifies, P-384 site keys."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_ssh_private_key,
    load_ssh_public_key,
)

from common.audit import AuditLog
from common.errors import EncryptionError
from common.he_keys import PUBLIC_CONTEXT_FILE, SECRET_CONTEXT_FILE, key_id
from server.deploy.coordinator import CoordinatorState
from server.deploy.launch import launch_config
from server.deploy.provision import Provisioned, provision


def test_provision_writes_a_verifiable_chain_and_one_bundle_per_site(tmp_path):
    out = tmp_path / "certs"
    made = provision(out, ["a", "b", "c"], host="coord.example.org", port=9092)
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    server = x509.load_pem_x509_certificate((out / "server.pem").read_bytes())
    server.verify_directly_issued_by(ca)  # raises if the CA did not sign it
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"coord.example.org", "localhost"}
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    server_key = load_pem_private_key((out / "server.key").read_bytes(), None)
    assert server_key.public_key() == server.public_key()
    assert (out / "server.key").stat().st_mode & 0o077 == 0
    assert (out / "ca.key").stat().st_mode & 0o077 == 0
    for site, bundle in made.sites.items():
        assert sorted(p.name for p in bundle.iterdir()) == [
            "ca.pem", "join.txt", "site.key", "site.pub", "site.toml",
        ]  # fmt: skip
        private = load_ssh_private_key((bundle / "site.key").read_bytes(), None)
        public = load_ssh_public_key((bundle / "site.pub").read_bytes())
        assert isinstance(private.curve, ec.SECP384R1)
        assert private.public_key() == public
        assert (bundle / "site.key").stat().st_mode & 0o077 == 0
        assert f'name = "{site}"' in (bundle / "site.toml").read_text()
        joining = (bundle / "join.txt").read_text()
        assert "--coordinator coord.example.org:9092 --bundle ." in joining
    keys = {(b / "site.pub").read_text() for b in made.sites.values()}
    assert len(keys) == 3  # every site has its own key
    assert Provisioned.load(out) == made
    assert json.loads((out / "provision.json").read_text())["sites"] == ["a", "b", "c"]


def test_an_ip_host_becomes_an_ip_san(tmp_path):
    provision(tmp_path / "c", ["a"], host="10.1.2.3")
    server = x509.load_pem_x509_certificate((tmp_path / "c" / "server.pem").read_bytes())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in sans.get_values_for_type(x509.IPAddress)


def test_provision_refuses_bad_input_in_one_line(cli, assert_one_line_error, tmp_path):
    out = tmp_path / "certs"
    assert cli("fedlife-coord", "provision", "--out", out, "--sites", "a,b").returncode == 0
    (entry,) = AuditLog(out / "audit", "coordinator").entries()
    assert entry["action"] == "provision" and entry["fields"]["sites"] == ["a", "b"]
    assert "PRIVATE" not in json.dumps(entry)  # names, never keys
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = cli("fedlife-coord", "provision", "--out", out, "--sites", "a,b")
    assert_one_line_error(again, str(out), "not empty")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # keys kept
    twice = cli("fedlife-coord", "provision", "--out", tmp_path / "x", "--sites", "a,a")
    assert_one_line_error(twice, "'a'", "twice")
    bad = cli("fedlife-coord", "provision", "--out", tmp_path / "y", "--sites", "a,../b")
    assert_one_line_error(bad, "'../b'")
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_start_refuses_to_run_insecure_or_without_certs(cli, assert_one_line_error, tmp_path):
    result = cli("fedlife-coord", "start", "--state", tmp_path / "state")
    assert_one_line_error(result, "--certs", "--insecure")
    missing = cli("fedlife-coord", "start", "--state", tmp_path / "s", "--certs", tmp_path)
    assert_one_line_error(missing, "provision.json")
    assert not (tmp_path / "s" / "coordinator.json").exists()


def test_provision_he_puts_the_secret_context_in_bundles_only(cli, assert_one_line_error, tmp_path):
    """--he: each bundle gets the secret CKKS context (owner-only), OUT only the public
    one; fedlife-coord run with he = true copies the public one into the run directory."""
    ts = pytest.importorskip("tenseal")
    out = tmp_path / "certs"
    made = cli("fedlife-coord", "provision", "--out", out, "--sites", "a,b", "--he")
    assert made.returncode == 0, made.stderr
    said = " ".join(made.stdout.split())
    assert f"only the public one is in {out / PUBLIC_CONTEXT_FILE}" in said
    provisioned = Provisioned.load(out)
    assert provisioned.he_key_id and provisioned.he_key_id in said
    for bundle in provisioned.sites.values():
        secret = bundle / SECRET_CONTEXT_FILE
        assert secret.stat().st_mode & 0o077 == 0
        ctx = ts.context_from(secret.read_bytes())
        assert ctx.has_secret_key() and key_id(ctx) == provisioned.he_key_id
    outside = [p for p in out.rglob("*") if p.is_file() and "sites" not in p.parts]
    contexts = [p for p in outside if p.name.endswith(".context")]
    assert contexts == [provisioned.he_public]
    assert not ts.context_from(provisioned.he_public.read_bytes()).has_secret_key()

    state = CoordinatorState(
        pid=0, host="127.0.0.1", port=9092, ca=str(out / "ca.pem"), insecure=False, database=""
    )
    config = launch_config(state, tmp_path / "run", overrides={"he": True})
    copied = Path(config["run-dir"]) / PUBLIC_CONTEXT_FILE
    assert copied.read_bytes() == provisioned.he_public.read_bytes()
    assert launch_config(state, tmp_path / "plain")["run-dir"]  # no he: nothing copied
    assert not (tmp_path / "plain" / PUBLIC_CONTEXT_FILE).exists()


def test_a_run_with_he_refuses_a_missing_or_secret_public_context(tmp_path):
    pytest.importorskip("tenseal")
    plain = provision(tmp_path / "plain", ["a"])
    state = CoordinatorState(
        pid=0,
        host="127.0.0.1",
        port=9092,
        ca=str(plain.out / "ca.pem"),
        insecure=False,
        database="",
    )
    with pytest.raises(EncryptionError, match="provision --he"):
        launch_config(state, tmp_path / "run", overrides={"he": True})
    insecure = CoordinatorState(pid=0, host="h", port=1, ca="", insecure=True, database="")
    with pytest.raises(EncryptionError, match="insecure"):
        launch_config(insecure, tmp_path / "run", overrides={"he": True})
    # A secret context put where the public one belongs never reaches the run directory.
    he = provision(tmp_path / "he", ["a"], he=True)
    he.he_public.write_bytes((he.sites["a"] / SECRET_CONTEXT_FILE).read_bytes())
    state.ca = str(he.out / "ca.pem")
    with pytest.raises(EncryptionError, match="secret key"):
        launch_config(state, tmp_path / "run-2", overrides={"he": True})
    assert not (tmp_path / "run-2" / PUBLIC_CONTEXT_FILE).exists()
