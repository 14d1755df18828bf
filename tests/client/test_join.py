"""``fedlife-site join``: its checks before it starts a SuperNode, its command, a refused key."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from cryptography import x509

from client.federation.join import plan_join
from client.federation.supernode import fingerprint
from common.errors import EncryptionError
from common.he_keys import SECRET_CONTEXT_FILE
from server.deploy.coordinator import stop_tree
from server.deploy.provision import provision, write_site_bundle
from tests.client.test_site_cli import site_toml
from tests.conftest import console_script
from tests.e2e.conftest import run_cli


@pytest.fixture
def site(tmp_path):
    config = tmp_path / "site.toml"
    config.write_text(site_toml())
    certs = provision(tmp_path / "certs", ["tiny"], port=9092)
    return config, certs.sites["tiny"]


def test_the_supernode_gets_tls_the_site_key_and_its_site_config(site, tmp_path):
    config, bundle = site
    plan = plan_join(config, "coord.example.org:9092", bundle, egress_log=tmp_path / "out")
    command = plan.command()
    assert command[:3] == [sys.executable, "-m", "client.federation.supernode_process"]
    assert command[command.index("--superlink") + 1] == "coord.example.org:9092"
    assert command[command.index("--root-certificates") + 1] == str(bundle.resolve() / "ca.pem")
    key = command[command.index("--auth-supernode-private-key") + 1]
    assert key == str(bundle.resolve() / "site.key")
    node_config = command[command.index("--node-config") + 1]
    assert node_config == (
        f'site-config="{config.resolve()}" bundle="{bundle.resolve()}" '
        f'egress-log="{tmp_path / "out"}"'
    )
    assert "--insecure" not in command and plan.clientappio_port > 0


@pytest.mark.parametrize(
    ("broken", "needles"),
    [
        ("no-ca", ["ca.pem"]),
        ("no-key", ["site.key", "missing"]),
        ("rsa-ish", ["site.key", "not an OpenSSH private key"]),
        ("no-bundle", ["--bundle", "--insecure"]),
        ("bad-address", ["--coordinator", "HOST:PORT"]),
    ],
)
def test_join_refuses_in_one_line(cli, assert_one_line_error, site, broken, needles):
    config, bundle = site
    address, args = "127.0.0.1:9092", ["--bundle", str(bundle)]
    if broken == "no-ca":
        (bundle / "ca.pem").unlink()
    elif broken == "no-key":
        (bundle / "site.key").unlink()
    elif broken == "rsa-ish":
        (bundle / "site.key").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n")
    elif broken == "no-bundle":
        args = []
    else:
        address = "nohostport"
    result = cli("fedlife-site", "join", "-c", config, "--coordinator", address, *args)
    assert_one_line_error(result, *needles)


def test_join_refuses_a_site_config_that_does_not_validate(cli, assert_one_line_error, site):
    _, bundle = site  # the provisioned stub has no [schema] yet
    stub = bundle / "site.toml"
    result = cli("fedlife-site", "join", "-c", stub, "--coordinator", "h:1", "--bundle", bundle)
    assert_one_line_error(result, "schema")
    assert x509.load_pem_x509_certificate((bundle / "ca.pem").read_bytes())  # bundle untouched


def test_join_gives_up_on_an_absent_coordinator_in_one_line(cli, assert_one_line_error, site):
    config, bundle = site
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    started = time.monotonic()
    result = cli(
        "fedlife-site", "join", "-c", config, "--coordinator", address, "--bundle", bundle,
        "--max-wait", "2",
    )  # fmt: skip
    assert_one_line_error(result, address, "did not answer in 2 s", "--max-wait 0")
    assert time.monotonic() - started < 60


# Beside the deployment tests (-m deploy), not among the parallel ones: with both test
# workers busy, starting the SuperLink and the SuperNode took join past 120 s in make test.
@pytest.mark.e2e
@pytest.mark.deploy
def test_a_key_the_coordinator_never_registered_ends_in_one_line_naming_it(cli_env, tmp_path):
    """e2e: only a real SuperLink with node authentication answers Flower's code 2004.

    join runs from a shell whose PATH lacks this environment, as ``make test`` does: the
    SuperNode then used to miss ``flower-superexec``, and its main thread's end left it
    (and join) running for good.

    The SuperLink runs with the TLS and authentication flags ``fedlife-coord start``
    gives it, but without that command's key registrations, SuperExec and graceful stop
    (half the time here); test_deploy.py joins with a wrong key through the whole
    coordinator. About 10 s alone; on a loaded machine the CLI call may take 120 s.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    certs = provision(tmp_path / "coord-certs", ["tiny"], port=port).out
    config = tmp_path / "site.toml"
    config.write_text(site_toml())
    wrong = tmp_path / "wrong-bundle"
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    write_site_bundle(wrong, "wrong", ca, f"127.0.0.1:{port}")
    cli_env["PATH"] = "/usr/bin:/bin"  # no flower-superexec on it
    with open(tmp_path / "superlink.log", "wb") as log:
        superlink = subprocess.Popen(
            [
                console_script("flower-superlink"), "--host", "127.0.0.1", "--port", str(port),
                "--database", str(tmp_path / "state.db"),
                "--disable-runtime-dependency-installation", "--isolation", "process",
                "--ssl-ca-certfile", str(certs / "ca.pem"),
                "--ssl-certfile", str(certs / "server.pem"),
                "--ssl-keyfile", str(certs / "server.key"),
                "--enable-supernode-auth",
            ],
            env=cli_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        result = run_cli(  # join waits for the SuperLink's port to open
            [
                console_script("fedlife-site"), "join", "-c", str(config),
                "--coordinator", f"127.0.0.1:{port}", "--bundle", str(wrong), "--max-wait", "90",
            ],
            cli_env,
            timeout=300,
        )  # fmt: skip
    finally:
        stop_tree(superlink.pid, timeout=10)
    shown = f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "ApiError:2004" in (tmp_path / "superlink.log").read_text(), shown  # Flower's refusal
    assert result.returncode == 2, shown
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "Exit Code" not in output, shown
    assert "Failed to activate SuperNode" not in output, shown  # Flower's words, replaced
    assert "Starting Flower SuperNode" in result.stderr, shown  # its log passes through
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: coordinator 127.0.0.1:{port} refused the key"), shown
    for needle in (str(wrong.resolve() / "site.key"), fingerprint(wrong / "site.key")):
        assert needle in last, shown


def test_join_refuses_a_bundle_whose_he_context_has_no_secret_key(tmp_path):
    """A bundle provisioned with --he whose secret context was swapped for the public one
    (what the coordinator holds) cannot decrypt: join says so before the SuperNode starts."""
    pytest.importorskip("tenseal")
    config = tmp_path / "site.toml"
    config.write_text(site_toml())
    certs = provision(tmp_path / "certs", ["tiny"], port=9092, he=True)
    bundle = certs.sites["tiny"]
    plan = plan_join(config, "127.0.0.1:9092", bundle)  # the provisioned bundle joins
    assert (
        f'bundle="{bundle.resolve()}"' in plan.command()[plan.command().index("--node-config") + 1]
    )
    (bundle / SECRET_CONTEXT_FILE).write_bytes(certs.he_public.read_bytes())
    with pytest.raises(EncryptionError, match=f"{SECRET_CONTEXT_FILE}: .*no secret key"):
        plan_join(config, "127.0.0.1:9092", bundle)
