"""A simulation killed mid-run resumes from its checkpoint and ends as if never stopped."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from client.privacy.ledger import PrivacyLedger
from tests.e2e.conftest import ROOT, run_cli, script

pytestmark = pytest.mark.e2e

# Reproducible noise: the resumed run must end where the uninterrupted one did.
ARGS = ["--sites", "3", "--rounds", "4", "--seed", "5", "--json", "--reproducible"]


def rounds_of(run_dir) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["round"] for line in path.read_text().splitlines() if line.strip()]


def test_killed_run_resumes_with_every_round_once_and_the_same_result(isolated_env, tmp_path):
    whole = run_cli(
        [script("fedlife-sim"), "run", *ARGS, "--run-dir", str(tmp_path / "a")], isolated_env
    )
    assert whole.returncode == 0, whole.stderr[-2000:]
    uninterrupted = json.loads(whole.stdout)

    stopped = tmp_path / "b"
    process = subprocess.Popen(
        [script("fedlife-sim"), "run", *ARGS, "--run-dir", str(stopped)],
        env=isolated_env,
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
    assert 2 <= len(done_before) < 4, done_before

    resumed = run_cli(
        [script("fedlife-sim"), "run", "--resume", str(stopped), "--json"], isolated_env
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    summary = json.loads(resumed.stdout)

    assert rounds_of(stopped) == [1, 2, 3, 4]  # no round lost, none repeated
    assert summary["rounds"] == 4
    assert summary["test_accuracy"] == uninterrupted["test_accuracy"]
    assert summary["epsilon_spent"] == pytest.approx(uninterrupted["epsilon_spent"])
    for site in ("site-000", "site-001", "site-002"):
        ledger = PrivacyLedger(stopped / "sites" / site / "store")
        entries = ledger.entries()
        trained = [e.round for e in entries if e.mechanism == "dp-sgd"]
        assert sorted(trained) == [1, 2, 3, 4]  # a replayed round spent nothing twice
        # The centers were released once: the resumed run reused them.
        assert [e.mechanism for e in entries].count("gaussian-moments") == 1
        assert ledger.epsilon(1e-5) <= 3.0


def test_resume_refuses_what_is_not_a_run_or_is_corrupt(
    isolated_env, tmp_path, assert_one_line_error
):
    (tmp_path / "empty").mkdir()
    result = run_cli(
        [script("fedlife-sim"), "run", "--resume", str(tmp_path / "empty")], isolated_env
    )
    assert_one_line_error(result, "not a fedlife run directory")

    run_dir = tmp_path / "run"
    done = run_cli(
        [
            script("fedlife-sim"),
            "run",
            "--sites",
            "2",
            "--rounds",
            "1",
            "--json",
            "--run-dir",
            str(run_dir),
        ],
        isolated_env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    checkpoint = run_dir / "models" / "round-001.pt"
    checkpoint.write_bytes(b"not a checkpoint")
    ledger = (run_dir / "sites" / "site-000" / "store" / "privacy" / "ledger.jsonl").read_bytes()

    result = run_cli([script("fedlife-sim"), "run", "--resume", str(run_dir)], isolated_env)
    assert_one_line_error(result, "round-001.pt", "corrupt")
    assert checkpoint.read_bytes() == b"not a checkpoint"
    assert (
        run_dir / "sites" / "site-000" / "store" / "privacy" / "ledger.jsonl"
    ).read_bytes() == ledger
