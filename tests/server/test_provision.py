"""``fedlife-coord provision``: a CA, a server certificate that verifies, P-384 site keys."""

from __future__ import annotations

import ipaddress
import json

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    load_pem_private_key,
    load_ssh_private_key,
    load_ssh_public_key,
)

from common.audit import AuditLog
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
