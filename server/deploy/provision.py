"""Provisioning: the federation's CA, the coordinator's TLS certificate, the sites' keys.

Layout of ``--out DIR``::

    DIR/provision.json        host, port, sites (what ``fedlife-coord start`` reads)
    DIR/ca.pem, ca.key        the federation's certificate authority (keep ca.key offline)
    DIR/server.pem, .key      the coordinator's TLS certificate (SANs: host, localhost,
                              127.0.0.1, ::1) and its key
    DIR/sites/<name>/         one bundle per site, sent to that site:
        ca.pem                to verify the coordinator
        site.key, site.pub    the site's EC key pair (NIST P-384, OpenSSH format), which
                              Flower's SuperNode authentication requires
        site.toml             a stub of the site's config
        join.txt              the exact command the site runs to join
        he-secret.context     with ``--he``: the federation's CKKS secret context (sites only)
    DIR/he-public.context     with ``--he``: its public context, all the coordinator gets

Only the public half of each site key is registered with the SuperLink; the private
half leaves this machine once, in the site's bundle. So does the HE secret context:
``fedlife-coord run`` with ``he = true`` copies only ``he-public.context`` into the
run directory, and the running coordinator never holds a secret key.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.errors import ConfigError
from common.he_keys import PUBLIC_CONTEXT_FILE
from common.he_keys import provision as provision_he_key

MANIFEST = "provision.json"
SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
CA_DAYS, SERVER_DAYS = 5 * 365, 2 * 365
DEFAULT_PORT = 9092


@dataclass(frozen=True)
class Provisioned:
    """What ``provision`` wrote.

    Parameters
    ----------
    out : the provisioning folder.
    host : the name or address sites use to reach the coordinator.
    port : the SuperLink's port.
    sites : site name -> its bundle folder.
    he_key_id : the HE key's id when provisioned with ``he`` ('' = no HE key).
    """

    out: Path
    host: str
    port: int
    sites: dict[str, Path]
    he_key_id: str = ""

    @property
    def he_public(self) -> Path:
        """The federation's public HE context (what the coordinator may hold)."""
        return self.out / PUBLIC_CONTEXT_FILE

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @classmethod
    def load(cls, out: str | Path) -> Provisioned:
        """Read a provisioning folder, or fail with one line naming what is missing."""
        out = Path(out)
        try:
            data = json.loads((out / MANIFEST).read_text())
        except (OSError, json.JSONDecodeError):
            raise ConfigError(
                f"{out}: not a provisioning folder (no readable {MANIFEST}; "
                "run fedlife-coord provision)"
            ) from None
        provisioned = cls(
            out,
            data["host"],
            int(data["port"]),
            {s: out / "sites" / s for s in data["sites"]},
            he_key_id=str(data.get("he_key_id", "")),
        )
        for name in ("ca.pem", "server.pem", "server.key"):
            if not (out / name).is_file():
                raise ConfigError(f"{out / name}: missing from the provisioning folder")
        return provisioned

    def public_key(self, site: str) -> Path:
        return self.sites[site] / "site.pub"


def provision(
    out: str | Path,
    sites: list[str],
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    he: bool = False,
) -> Provisioned:
    """Write the CA, the coordinator's certificate and one bundle per site into ``out``.

    Parameters
    ----------
    out : a folder that does not exist or is empty (keys are never overwritten).
    sites : the sites' names (unique, letters, digits, ``-``, ``_``, ``.``).
    host : the DNS name or IP address sites will connect to.
    port : the SuperLink's port.
    he : also make the encrypted aggregation key: its secret CKKS context into every
        site bundle, only the public one into ``out`` (the coordinator's).
    """
    out = Path(out)
    _check_sites(sites)
    if not 0 < port < 65536:
        raise ConfigError(f"--port must be 1..65535, got {port}")
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out}: not empty; provision into a new folder (keys are kept)")
    out.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP384R1())
    ca_cert = _ca_certificate(ca_key)
    server_key = ec.generate_private_key(ec.SECP384R1())
    server_cert = _server_certificate(server_key, ca_key, ca_cert, host)
    _write(out / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(out / "ca.key", _pem_private(ca_key), private=True)
    _write(out / "server.pem", server_cert.public_bytes(serialization.Encoding.PEM))
    _write(out / "server.key", _pem_private(server_key), private=True)
    provisioned = Provisioned(out, host, port, {s: out / "sites" / s for s in sites})
    for site, bundle in provisioned.sites.items():
        write_site_bundle(bundle, site, ca_cert, provisioned.address)
    if he:  # the secret context goes into the bundles only, like the sites' private keys
        he_key_id = provision_he_key(provisioned.sites.values(), out)
        provisioned = replace(provisioned, he_key_id=he_key_id)
    manifest = {"host": host, "port": port, "sites": sites, "created": _now().isoformat()}
    if provisioned.he_key_id:
        manifest["he_key_id"] = provisioned.he_key_id
    _write(out / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode())
    return provisioned


def write_site_bundle(bundle: Path, site: str, ca_cert: x509.Certificate, address: str) -> None:
    """One site's bundle: CA certificate, EC key pair, site.toml stub, join command."""
    bundle.mkdir(parents=True)
    key = ec.generate_private_key(ec.SECP384R1())
    _write(bundle / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM))
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    _write(bundle / "site.key", private, private=True)
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    _write(bundle / "site.pub", public + f" fedlife-{site}\n".encode())
    _write(bundle / "site.toml", _site_stub(site).encode())
    command = join_command(address)
    _write(bundle / "join.txt", f"{command}\n".encode())


def join_command(address: str) -> str:
    """The command a site runs from inside its bundle folder."""
    return f"fedlife-site join -c site.toml --coordinator {address} --bundle ."


def _site_stub(site: str) -> str:
    return (
        f"# site.toml of '{site}' (a stub from fedlife-coord provision).\n"
        "# Describe your data with `fedlife-site init` (it infers the [schema] from a\n"
        "# sample), keep this [site] name, then `fedlife-site prepare -c site.toml`.\n"
        "[site]\n"
        f'name = "{site}"\n'
        'raw = "raw"       # your raw files; never modified, never sent\n'
        'store = "store"   # Delta tables, privacy ledger, reports\n'
    )


def _check_sites(sites: list[str]) -> None:
    if not sites:
        raise ConfigError("--sites needs at least one site name, e.g. --sites a,b,c")
    bad = [s for s in sites if not SITE_NAME.match(s)]
    if bad:
        raise ConfigError(
            f"--sites: {bad[0]!r} is not a site name (letters, digits, '-', '_', '.')"
        )
    duplicates = sorted({s for s in sites if sites.count(s) > 1})
    if duplicates:
        raise ConfigError(f"--sites: {duplicates[0]!r} is named twice")


def _ca_certificate(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedlife federation CA")])
    return (
        _builder(name, name, key.public_key(), CA_DAYS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA384())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    host: str,
) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    return (
        _builder(subject, ca_cert.subject, key.public_key(), SERVER_DAYS)
        .add_extension(x509.SubjectAlternativeName(subject_alt_names(host)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA384())
    )


def subject_alt_names(host: str) -> list[x509.GeneralName]:
    """The coordinator's names: ``host`` plus the loopback names, each once."""
    names: list[x509.GeneralName] = []
    for value in (host, "localhost", "127.0.0.1", "::1"):
        try:
            name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(value))
        except ValueError:
            name = x509.DNSName(value)
        if name not in names:
            names.append(name)
    return names


def _builder(subject, issuer, public_key, days: int) -> x509.CertificateBuilder:
    start = _now() - timedelta(minutes=5)  # tolerate small clock skew between machines
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
    )


def _pem_private(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write ``data``; a private key is readable by its owner only from the start."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    with os.fdopen(os.open(path, flags, 0o600 if private else 0o644), "wb") as handle:
        handle.write(data)


def _now() -> datetime:
    return datetime.now(UTC)
