"""A simulation killed mid-run resumes from its checkpoint and ends as if never stopped."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from client.privacy.ledger import PrivacyLedger
from tests.e2e.conftest import ROOT, isolated, run_cli, script

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Reproducible noise: the resumed run must end where the uninterrupted one did.
ARGS = ["--sites", "3", "--rounds", "3", "--seed", "5", "--json", "--reproducible"]


def rounds_of(run_dir) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["round"] for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict, Path]:
    """A whole run of ``ARGS``: its summary and run directory."""
    run_dir = tmp_path_factory.mktemp("whole") / "run"
    with isolated() as env:
        whole = run_cli([script("fedlife-sim"), "run", *ARGS, "--run-dir", str(run_dir)], env)
    assert whole.returncode == 0, whole.stderr[-2000:]
    return json.loads(whole.stdout), run_dir


def kill_after_round_2_and_resume(env, stopped: Path, *extra: str) -> dict:
    """Run ``ARGS`` (plus ``extra``) into ``stopped``, SIGKILL it once round 2 is
    recorded, resume it with ``--resume``; the resumed run's summary."""
    process = subprocess.Popen(
        [script("fedlife-sim"), "run", *ARGS, *extra, "--run-dir", str(stopped)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 180
    while len(rounds_of(stopped)) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done_before = rounds_of(stopped)
    assert 2 <= len(done_before) < 3, done_before

    resumed = run_cli([script("fedlife-sim"), "run", "--resume", str(stopped), "--json"], env)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    return json.loads(resumed.stdout)


def assert_every_round_once(stopped: Path, summary: dict, uninterrupted: dict) -> None:
    assert rounds_of(stopped) == [1, 2, 3]  # no round lost, none repeated
    assert summary["rounds"] == 3
    assert summary["epsilon_spent"] == pytest.approx(uninterrupted["epsilon_spent"])
    for site in ("site-000", "site-001", "site-002"):
        ledger = PrivacyLedger(stopped / "sites" / site / "store")
        entries = ledger.entries()
        trained = [e.round for e in entries if e.mechanism == "dp-sgd"]
        assert sorted(trained) == [1, 2, 3]  # a replayed round spent nothing twice
        # The centers were released once: the resumed run reused them.
        assert [e.mechanism for e in entries].count("gaussian-moments") == 1
        assert ledger.epsilon(1e-5) <= 3.0


def test_killed_run_resumes_with_every_round_once_and_the_same_result(
    isolated_env, tmp_path, uninterrupted
):
    uninterrupted, _ = uninterrupted
    stopped = tmp_path / "b"
    summary = kill_after_round_2_and_resume(isolated_env, stopped)
    assert_every_round_once(stopped, summary, uninterrupted)
    assert summary["test_accuracy"] == uninterrupted["test_accuracy"]


def test_killed_encrypted_run_resumes_with_every_round_once(isolated_env, tmp_path, uninterrupted):
    """e2e because resuming an HE run spans fedlife-sim's resume (the .he checkpoint is
    checked first), the ServerApp (the last encrypted checkpoint becomes the global model)
    and the sites (decrypting it, replaying a round they already released). Its baseline
    is this module's uninterrupted plaintext run: the same seed and DP noise, and the
    CKKS sum differs from FedAvg by about 1e-7."""
    uninterrupted, _ = uninterrupted
    stopped = tmp_path / "he"
    summary = kill_after_round_2_and_resume(isolated_env, stopped, "--he")
    assert_every_round_once(stopped, summary, uninterrupted)
    assert summary["evaluated_on"].startswith("federated evaluation only")
    assert abs(summary["federated_accuracy"] - uninterrupted["federated_accuracy"]) <= 0.01
    models = sorted(p.name for p in (stopped / "models").iterdir())
    assert models == ["round-001.he", "round-002.he", "round-003.he"]
    assert (stopped / "model.he").is_file() and not (stopped / "model.pt").exists()


def test_resume_refuses_what_is_not_a_run_or_is_corrupt(
    isolated_env, tmp_path, assert_one_line_error, uninterrupted
):
    (tmp_path / "empty").mkdir()
    result = run_cli(
        [script("fedlife-sim"), "run", "--resume", str(tmp_path / "empty")], isolated_env
    )
    assert_one_line_error(result, "not a fedlife run directory")

    run_dir = shutil.copytree(uninterrupted[1], tmp_path / "run", symlinks=True)
    checkpoint = run_dir / "models" / "round-003.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    ledger = run_dir / "sites" / "site-000" / "store" / "privacy" / "ledger.jsonl"
    ledger_before = ledger.read_bytes()

    result = run_cli([script("fedlife-sim"), "run", "--resume", str(run_dir)], isolated_env)
    assert_one_line_error(result, "round-003.pt", "corrupt")
    assert checkpoint.read_bytes() == b"not a checkpoint"
    assert ledger.read_bytes() == ledger_before
