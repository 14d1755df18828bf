"""A real deployment on 127.0.0.1: Flower's own SuperLink and SuperNodes, TLS, node auth.

One federation (coordinator + three provisioned sites, provisioned with an HE key)
serves every test of this module, in order: a clean 2-round run, the rejected and rogue
nodes, the site's egress log, then a second run that suffers a site crashed mid-round
and, later, the coordinator crashed mid-run, and last an encrypted (HE) run. Every
process is started here, recorded by PID, and stopped by PID.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
import torch
from cryptography import x509

from common.config import load_site_config
from common.he_keys import read_chunks
from server.deploy.coordinator import CoordinatorState, kill, live_pids, stop_tree, stop_trees
from server.deploy.provision import write_site_bundle
from tests.e2e.conftest import ROOT, free_port, script

pytestmark = [pytest.mark.e2e, pytest.mark.deploy, pytest.mark.slow]

SITES = ["site-000", "site-001", "site-002"]
SPARE = "spare"  # provisioned and registered, used only without the CA
REJECTED = ("no-key", "wrong-key", "no-ca")
RUN_TIMEOUT_S = 400


@dataclass
class Deployment:
    """The module's federation: paths, environment and the processes it started."""

    root: Path
    env: dict[str, str]
    port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def certs(self) -> Path:
        return self.root / "certs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def site_toml(self, site: str) -> Path:
        return self.root / "data" / "sites" / site / "site.toml"

    def egress(self, site: str) -> Path:
        return self.root / "egress" / site / "egress.jsonl"

    def cli(self, *args: str | Path, timeout: float = RUN_TIMEOUT_S):
        return subprocess.run(
            [script(str(args[0])), *map(str, args[1:])],
            env=self.env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def spawn(self, name: str, *args: str | Path) -> subprocess.Popen:
        """Start a long-running process, its output in ``root/logs/name.log``."""
        logs = self.root / "logs"
        logs.mkdir(exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                [script(str(args[0])), *map(str, args[1:])],
                env=self.env,
                cwd=self.root,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.root / "logs" / f"{name}.log").read_text(errors="replace")

    def join(self, site: str) -> subprocess.Popen:
        return self.spawn(
            site,
            "fedlife-site",
            "join",
            "-c",
            self.site_toml(site),
            "--coordinator",
            self.address,
            "--bundle",
            self.certs / "sites" / site,
            "--egress-log",
            self.egress(site).parent,
        )

    def start_coordinator(self):
        return self.cli(
            "fedlife-coord", "start", "--certs", self.certs, "--state", self.state,
            "--host", "127.0.0.1",
        )  # fmt: skip

    def coordinator(self) -> CoordinatorState:
        return CoordinatorState.load(self.state)

    def online_nodes(self) -> set[str]:
        listed = self.cli("flwr", "supernode", "list", "fedlife", "--format", "json", timeout=60)
        nodes = json.loads(listed.stdout).get("nodes", [])
        return {str(n["node-id"]) for n in nodes if n["status"] == "online"}

    def wait_online(self, node_ids: set[str], timeout: float = 120) -> None:
        wait_for(lambda: node_ids <= self.online_nodes(), timeout, f"nodes {node_ids} online")

    def run(self, *args: str | Path):
        return self.cli("fedlife-coord", "run", "--state", self.state, *args)


def wait_for(condition: Callable[[], object], timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


def rounds(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def participants(record: dict) -> list[str]:
    return sorted(p["site"] for p in record["participants"])


@pytest.fixture(scope="module")
def deployment() -> Iterator[Deployment]:
    root = Path(tempfile.mkdtemp(prefix="fl-deploy-", dir="/tmp"))
    env = {
        **os.environ,
        "FLWR_HOME": str(root / "flwr-home"),
        "RAY_TMPDIR": str(root / "ray"),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
        "FLWR_TELEMETRY_ENABLED": "0",
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(ROOT),
    }
    env.pop("FEDLIFE_DEBUG", None)
    deployment = Deployment(root, env, free_port())
    try:
        # The sites' data (a private Ray prepares it) is made while the coordinator starts.
        making = deployment.spawn(
            "sites", "fedlife-sim", "sites", "--out", root / "data", "--sites", str(len(SITES)),
            "--epsilon", "none",  # the runs share the sites; a DP budget lasts one
        )  # fmt: skip
        provisioned = deployment.cli(
            "fedlife-coord",
            "provision",
            "--out",
            deployment.certs,
            "--sites",
            ",".join([*SITES, SPARE]),
            "--port",
            str(deployment.port),
            "--he",  # the encrypted run at the end; plain runs ignore the key
        )
        assert provisioned.returncode == 0, provisioned.stderr
        started = deployment.start_coordinator()
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"listening on {deployment.address} " in started.stdout
        assert making.wait(timeout=180) == 0, deployment.log("sites")
        for site in SITES:
            deployment.join(site)
        start_rejected_nodes(deployment)
        sites = {deployment.coordinator().nodes[s] for s in SITES}
        deployment.wait_online(sites)
        yield deployment
    finally:
        pids = [process.pid for process in deployment.processes.values()]
        if (deployment.state / "coordinator.json").exists():
            pids += live_pids(deployment.coordinator())
        stop_trees(pids, timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def start_rejected_nodes(deployment: Deployment) -> None:
    """Nodes the SuperLink must refuse, plus an outsider who registers its own key."""
    certs = deployment.certs
    site_toml = deployment.site_toml(SITES[0])
    # 1. No key at all: the SuperNode tries to register itself (auth forbids it).
    deployment.spawn(
        "no-key",
        "flower-supernode",
        "--superlink",
        deployment.address,
        "--root-certificates",
        certs / "ca.pem",
        "--node-config",
        f'site-config="{site_toml}"',
        "--port",
        str(free_port()),
    )
    # 2. A well-formed bundle whose key was never registered.
    wrong = deployment.root / "wrong-bundle"
    ca = x509.load_pem_x509_certificate((certs / "ca.pem").read_bytes())
    write_site_bundle(wrong, "wrong", ca, deployment.address)
    deployment.spawn(
        "wrong-key",
        "fedlife-site",
        "join",
        "-c",
        site_toml,
        "--coordinator",
        deployment.address,
        "--bundle",
        wrong,
    )
    # 3. A registered key, but no CA: the coordinator's certificate cannot be verified.
    deployment.spawn(
        "no-ca",
        "flower-supernode",
        "--superlink",
        deployment.address,
        "--auth-supernode-private-key",
        certs / "sites" / SPARE / "site.key",
        "--node-config",
        f'site-config="{site_toml}"',
        "--port",
        str(free_port()),
        "--max-retries",
        "1",
    )


@pytest.fixture(scope="module")
def rogue(deployment: Deployment) -> str:
    """An outsider registers its own key with Flower's CLI and connects: its node ID."""
    home = deployment.root / "rogue-home"
    bundle = deployment.root / "rogue-bundle"
    ca = x509.load_pem_x509_certificate((deployment.certs / "ca.pem").read_bytes())
    write_site_bundle(bundle, "rogue", ca, deployment.address)
    home.mkdir()
    (home / "config.toml").write_text(
        '[superlink]\ndefault = "target"\n[superlink.target]\n'
        f'address = "{deployment.address}"\nroot-certificates = "{bundle / "ca.pem"}"\n'
    )
    registered = subprocess.run(
        [script("flwr"), "supernode", "register", str(bundle / "site.pub"), "--format", "json"],
        env={**deployment.env, "FLWR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    reply = json.loads(registered.stdout)
    assert reply["success"], reply  # Flower 1.42 OSS: the Control API needs no account
    deployment.spawn(
        "rogue",
        "fedlife-site",
        "join",
        "-c",
        deployment.site_toml(SITES[0]),
        "--coordinator",
        deployment.address,
        "--bundle",
        bundle,
        "--egress-log",
        deployment.egress("rogue").parent,
    )
    node_id = str(reply["node-id"])
    deployment.wait_online({node_id})
    return node_id


@pytest.fixture(scope="module")
def first_run(deployment: Deployment, rogue: str) -> Path:
    """Two rounds on the three sites (the rogue node is online meanwhile)."""
    run_dir = deployment.root / "run-1"
    result = deployment.run(
        "--rounds", "2", "--test-data", deployment.root / "data" / "test.csv", "--run-dir", run_dir
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return run_dir


def test_three_sites_run_two_rounds_over_tls_with_node_auth(deployment, first_run):
    records = rounds(first_run)
    assert [r["round"] for r in records] == [1, 2]
    for record in records:
        assert participants(record) == SITES, record
        assert all(p["table_version"] >= 0 for p in record["participants"])
        assert not record["failures"] and not record["excluded"]
    summary = json.loads((first_run / "summary.json").read_text())
    assert summary["rounds"] == 2 and sorted(summary["epsilon_spent"]) == SITES
    assert len(list((first_run / "models").glob("round-*.pt"))) == 2
    superlink = psutil.Process(deployment.coordinator().pid).cmdline()
    for flag in ("--enable-supernode-auth", "--ssl-certfile", "--superexec-auth-secret-file"):
        assert flag in superlink
    assert "--insecure" not in superlink


def test_nodes_without_registered_key_wrong_key_or_ca_are_rejected(deployment, first_run):
    expected = {
        "no-key": "must be registered via the CLI",  # self-registration is disabled under node auth
        "wrong-key": "refused the key",  # join's one line, naming the bundle's site.key
        "no-ca": "CERTIFICATE_VERIFY_FAILED",
    }
    for name, reason in expected.items():
        # Each gives up on its own (they did so while the first run went on).
        assert deployment.processes[name].wait(timeout=180) != 0, deployment.log(name)
        assert reason.lower() in deployment.log(name).lower(), deployment.log(name)
    spare = deployment.coordinator().nodes[SPARE]
    assert spare not in deployment.online_nodes()
    assert all(participants(r) == SITES for r in rounds(first_run))


def test_a_key_registered_by_an_outsider_never_takes_part(deployment, rogue, first_run):
    assert rogue in deployment.online_nodes()
    assert rogue not in deployment.coordinator().nodes.values()
    assert not deployment.egress("rogue").exists()  # it was never sent a message
    assert all(len(r["participants"]) == len(SITES) for r in rounds(first_run))


def test_only_our_superexec_may_claim_serverapp_tasks(deployment, first_run):
    """The Runtime API shares the public port: a claim without the shared secret fails."""
    context = ssl.create_default_context(cafile=str(deployment.certs / "ca.pem"))
    request = urllib.request.Request(
        f"https://{deployment.address}/v1/runtime/acquire-task",
        data=b"",
        headers={"Content-Type": "application/protobuf"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=30)
    assert refused.value.code == 401


ALLOWED_CONFIG_KEYS = {
    "name", "table-version", "labeled-version", "epsilon-budget", "delta", "eval-split",
    "purged-versions", "feature-spec", "gate", "reason", "statistics", "fairness",
    "importance", "num-examples", "count", "sums", "squares",
    "audit-head", "store-id",  # public: the site's audit head and a keyed store name
}  # fmt: skip


def released_counts(statistics: str) -> list[int]:
    """Every row count in a site's released histograms (current and previous version)."""
    released = json.loads(statistics)
    counts = []
    for histograms in (released["histograms"], released["previous_histograms"]):
        if histograms is None:
            continue
        table = json.loads(histograms)
        counts.append(table["n_rows"])
        for column in table["columns"].values():
            counts += [*column.get("counts", {}).values(), column.get("nulls", 0)]
    return counts


def test_sites_send_only_arrays_metrics_and_aggregates(deployment, first_run):
    model = torch.load(first_run / "model.pt", weights_only=True)
    shapes = {name: list(tensor.shape) for name, tensor in model.items()}
    for site in SITES:
        min_group = _min_group_size(deployment.site_toml(site))
        raw_lines = _raw_rows(deployment.site_toml(site))
        lines = [json.loads(x) for x in deployment.egress(site).read_text().splitlines()]
        # profile + centers + statistics + 2 x (train + evaluate): every reply it sent
        kinds = [x["message_type"] for x in lines]
        assert (kinds.count("query"), kinds.count("train"), kinds.count("evaluate")) == (3, 2, 2)
        assert len(lines) == 7, lines
        for line in lines:
            assert line["error"] is None
            for record in line["records"].values():
                kind = record["kind"]
                assert kind in {"arrays", "metrics", "config"}, record
                if kind == "arrays":
                    assert {k: v["shape"] for k, v in record["arrays"].items()} == shapes
                elif kind == "metrics":
                    assert record["values"]["num-examples"] >= min_group, record
                else:
                    assert set(record["values"]) <= ALLOWED_CONFIG_KEYS, record
                    if "statistics" in record["values"]:  # histograms: no cell under k rows
                        counts = released_counts(record["values"]["statistics"])
                        assert counts and all(n == 0 or n >= min_group for n in counts)
                    if "num-examples" in record["values"]:
                        assert record["values"]["num-examples"] >= min_group
                    if "sums" in record["values"]:  # DP centers: a noisy count, no squares
                        assert record["values"]["squares"] == []
                        assert not float(record["values"]["count"]).is_integer()
            text = json.dumps(line)
            assert not any(row in text for row in raw_lines), "a raw row left the site"


@dataclass
class FaultyRun:
    """A 3-round run that suffers both faults, one test each, in order."""

    run_dir: Path
    runner: subprocess.Popen
    victim: str
    victim_replies_before: int

    def wait_for_rounds(self, number: int) -> list[dict]:
        """The run's rounds, once ``number`` of them are recorded."""
        done = lambda: len(rounds(self.run_dir)) >= number  # noqa: E731
        wait_for(done, RUN_TIMEOUT_S, f"round {number} of {self.run_dir.name}", every=0.2)
        return rounds(self.run_dir)


@pytest.fixture(scope="module")
def faulty_run(deployment: Deployment, first_run: Path) -> FaultyRun:
    """Run-2: a site crashes in round 1, then the coordinator crashes after round 2."""
    run_dir, victim = deployment.root / "run-2", SITES[2]
    before = _replies(deployment.egress(victim))
    # The crashed site's silence lasts until its node expires (heartbeats, up to
    # 60 s) or the timeout; a healthy site must fit in it on a machine busy with the
    # rest of the suite (make test runs it alongside). Round
    # 2 waits for the restarted site (min-available-sites), which rejoins only once
    # its old session expired, about when round 1 ends.
    settings = {"round-timeout": 90, "min-train-sites": 2, "min-available-sites": 3}
    config = json.dumps(settings)
    runner = deployment.spawn(
        "run-2", "fedlife-coord", "run", "--state", deployment.state, "--rounds", "3",
        "--run-dir", run_dir, "--run-config", config,
    )  # fmt: skip
    return FaultyRun(run_dir, runner, victim, before)


def test_a_site_killed_mid_round_is_left_out_then_rejoins(deployment, faulty_run):
    run_dir, victim = faulty_run.run_dir, faulty_run.victim
    wait_for(lambda: "feature_spec" in _info(run_dir), 180, "the profile round")
    # Past its profile, centers and statistics replies, its next message is round 1's training.
    sent = faulty_run.victim_replies_before + 3
    queried = lambda: _replies(deployment.egress(victim)) >= sent  # noqa: E731
    wait_for(queried, 180, f"{victim}'s profile, centers and statistics replies", every=0.2)
    site = deployment.processes[victim]
    # The statistics reply is logged inside its ClientApp, which may still be exiting:
    # round 1's training is a ClientApp started after that one.
    before = _clientapps(site.pid)
    wait_for(lambda: _clientapps(site.pid) - before, 120, f"{victim} training", every=0.2)
    stop_tree(site.pid, timeout=5, sig=signal.SIGKILL)  # a crash, not a goodbye
    supervise(deployment, victim, deployment.coordinator().nodes[victim])
    first, second = faulty_run.wait_for_rounds(2)[:2]
    assert participants(first) == SITES[:2] and first["failures"], first
    assert participants(second) == SITES, second


def test_coordinator_killed_mid_run_resumes_without_losing_a_round(deployment, faulty_run):
    run_dir = faulty_run.run_dir
    faulty_run.wait_for_rounds(2)
    crashed = deployment.coordinator()
    # The coordinator machine crashes: SuperLink, SuperExec, ServerApp and `flwr run`.
    kill(crashed, timeout=5, sig=signal.SIGKILL)
    stop_tree(faulty_run.runner.pid, timeout=5, sig=signal.SIGKILL)
    assert [r["round"] for r in rounds(run_dir)] == [1, 2]  # round 3 was under way
    restarted = deployment.start_coordinator()
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    # The crashed run was stopped, so the sites get no more of its queued messages.
    listed = deployment.cli("flwr", "list", "fedlife", "--format", "json", timeout=60)
    statuses = {r["run-id"]: r["status"] for r in json.loads(listed.stdout)["runs"]}
    assert statuses and all(s.startswith("finished") for s in statuses.values()), statuses
    state = deployment.coordinator()
    assert state.pid != crashed.pid
    deployment.wait_online({state.nodes[s] for s in SITES})
    resumed = deployment.run("--resume", run_dir)
    assert resumed.returncode == 0, (resumed.stdout + resumed.stderr)[-3000:]
    records = rounds(run_dir)
    assert [r["round"] for r in records] == [1, 2, 3]  # none lost, none repeated
    assert participants(records[2]) == SITES, records[2]
    assert json.loads((run_dir / "summary.json").read_text())["rounds"] == 3


def supervise(deployment: Deployment, site: str, node_id: str, timeout: float = 180) -> None:
    """Restart ``site`` until its node is back online, as systemd's Restart=on-failure would.

    Flower refuses to activate a node it still believes online: a crashed SuperNode's
    session lasts until its heartbeat expires (up to 2 x 30 s), so the first restarts
    exit with code 305 and the supervisor tries again.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen = len(deployment.log(site))
        process = deployment.join(site)
        while process.poll() is None:
            if f"SuperNode ID: {node_id}" in deployment.log(site)[seen:]:
                return
            time.sleep(1)
        time.sleep(5)  # RestartSec
    pytest.fail(f"{site} did not come back within {timeout:.0f} s")


def _info(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def _replies(egress: Path) -> int:
    """How many replies a site has sent (its egress log's lines)."""
    return len(egress.read_text().splitlines()) if egress.exists() else 0


def _clientapps(pid: int) -> set[int]:
    """The ClientApp processes under the SuperNode ``pid`` (one per message in work)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return set()
    return {c.pid for c in children if "flwr-clientapp" in " ".join(_cmdline(c))}


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except psutil.Error:
        return []


def _min_group_size(site_toml: Path) -> int:
    return load_site_config(site_toml).quality.min_group_size


def _raw_rows(site_toml: Path) -> list[str]:
    raw = load_site_config(site_toml).raw_location
    files = sorted(raw.glob("*.csv")) if raw.is_dir() else [raw]
    lines = [line for f in files for line in f.read_text().splitlines()[1:]]
    return [line for line in lines if len(line) > 20]


def test_an_encrypted_run_over_tls_leaves_no_secret_key_at_the_coordinator(deployment):
    """HE deployed: the sites load the secret context from their bundles, the coordinator
    copies only the public one into the run directory. One round (train, encrypted sum,
    evaluate on the decrypted model, the final decryption by the one consenting site) on
    the module's federation; a site then exports the final model itself."""
    tenseal = pytest.importorskip("tenseal")
    consenting = deployment.site_toml(SITES[0])
    consenting.write_text(
        consenting.read_text().replace(
            "[privacy]\n", "[privacy]\ndecrypt_final_for_coordinator = true\n"
        )
    )
    run_dir = deployment.root / "run-he"
    # The public ranges, no centers round: each message costs a ClientApp process per site.
    config = '{"he": true, "normalization": "range"}'
    result = deployment.run("--rounds", "1", "--run-dir", run_dir, "--run-config", config)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    (record,) = rounds(run_dir)
    assert participants(record) == SITES and not record["excluded"] and not record["failures"]
    assert record["federated"]["accuracy"] > 0
    info = json.loads((run_dir / "run.json").read_text())
    assert info["evaluation"].startswith("federated evaluation only")
    assert info["decrypted_by"] == [SITES[0]] and info["final_model"] == "decrypted"
    assert sorted(r["site"] for r in info["decrypt_refused"]) == SITES[1:]

    # Every file the coordinator holds (state, run directories, provisioning folder but
    # the site bundles) that TenSEAL loads is a context without a secret key.
    folders = [deployment.state, deployment.root / "flwr-home", deployment.certs]
    folders += deployment.root.glob("run-*")
    held = [p for f in folders for p in f.rglob("*") if p.is_file() and "sites" not in p.parts]
    public = []
    for path in held:
        try:
            context = tenseal.context_from(path.read_bytes())
        except Exception:  # noqa: BLE001, S112 - not a context: nothing to check
            continue
        assert not context.has_secret_key(), path
        public.append(path)
    assert {p.name for p in public} == {"he-public.context"} and len(public) == 2
    ciphertext = read_chunks(run_dir / "model.he")[0]
    with pytest.raises(ValueError, match="secret"):
        tenseal.ckks_vector_from(tenseal.context_from(public[0].read_bytes()), ciphertext).decrypt()

    bundle = deployment.certs / "sites" / SITES[1]
    out = deployment.root / "exported-at-site"
    exported = deployment.cli(
        "fedlife-site", "model", "export", "-c", deployment.site_toml(SITES[1]),
        "--run", run_dir, "--out", out, "--bundle", bundle,
    )  # fmt: skip
    assert exported.returncode == 0, exported.stdout + exported.stderr
    at_site = torch.load(out / "model_state_dict.pt", weights_only=True)
    registry = torch.load(run_dir / "model.pt", weights_only=True)
    assert max(float((at_site[k] - registry[k]).abs().max()) for k in registry) < 1e-4


def test_the_readme_stop_command_stops_the_coordinator(deployment, first_run):
    """Last in the module: ``fedlife-coord stop --state coord-state`` as the README shows
    it stops the SuperLink and its SuperExec; a second stop says in one line why not."""
    state = deployment.coordinator()
    assert state.pid in live_pids(state)

    stopped = deployment.cli("fedlife-coord", "stop", "--state", deployment.state)

    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert f"stopped SuperLink pid {state.pid}" in stopped.stdout
    assert live_pids(deployment.coordinator()) == []
    again = deployment.cli("fedlife-coord", "stop", "--state", deployment.state)
    assert again.returncode != 0
    assert "is running" in again.stderr and "Traceback" not in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1
