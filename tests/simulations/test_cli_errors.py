"""``fedlife-sim run`` rejects bad options with one line, before writing anything."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

RUN_OPTIONS = [
    "--dataset", "--sites", "--rounds", "--partition", "--alpha", "--epsilon", "--strategy",
    "--seed", "--ray-address", "--out", "--json", "--label", "--model", "--dirt", "--site-dirt",
    "--drift-site",
]  # fmt: skip


BAD_OPTIONS = [
    (["--dataset", "nosuchdata"], ["nosuchdata"]),
    (["--sites", "0"], ["sites"]),
    (["--sites", "-3"], ["sites", "-3"]),
    (["--rounds", "0"], ["rounds"]),
    (["--epsilon", "0"], ["epsilon"]),
    (["--epsilon", "-1"], ["epsilon", "-1"]),
    (["--epsilon", "abc"], ["epsilon", "abc"]),
    (["--strategy", "nosuch"], ["strategy"]),
    (["--alpha", "0"], ["alpha"]),
    (["--sites", "1000"], ["1000 sites", "rows"]),
    (["--dataset", "csv:/no/such/file.csv"], ["/no/such/file.csv", "does not exist"]),
]


@pytest.mark.parametrize(
    ("args", "needles"), [pytest.param(a, n, id=" ".join(a)) for a, n in BAD_OPTIONS]
)
def test_bad_option_is_one_line_and_writes_nothing(
    cli, assert_one_line_error, tmp_path, args, needles
):
    out = tmp_path / "runs"
    result = cli("fedlife-sim", "run", *args, "--out", out)
    assert_one_line_error(result, *needles)
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))
    assert list(tmp_path.iterdir()) in ([], [out]), sorted(tmp_path.iterdir())


def test_csv_without_a_label_column_is_one_line(cli, assert_one_line_error, tmp_path):
    data = tmp_path / "nolabel.csv"
    data.write_text("age,chol\n" + "".join(f"{40 + i},{200 + i}\n" for i in range(30)))

    result = cli("fedlife-sim", "run", "--dataset", f"csv:{data}", "--out", tmp_path / "runs")

    assert_one_line_error(result, "no label column", "--label")
    assert not (tmp_path / "runs").exists()
    assert data.read_text().startswith("age,chol\n")  # raw input untouched


@pytest.mark.parametrize("option", ["--out", "--run-dir"])
def test_unwritable_run_dir_is_one_line(cli, assert_one_line_error, tmp_path, option):
    # Tests run as root, for whom chmod does not make a folder unwritable: a path
    # below a regular file can never be created.
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder\n")
    target = blocker / "runs"
    # With --run-dir, --out names a folder that must not appear either.
    others = [] if option == "--out" else ["--out", tmp_path / "runs"]
    result = cli("fedlife-sim", "run", option, target, *others)
    assert_one_line_error(result, str(blocker))
    assert blocker.is_file() and blocker.read_text() == "not a folder\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"]], ids=["sim", "run"])
def test_help(cli, args):
    result = cli("fedlife-sim", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    if args == ["--help"]:
        assert "run" in result.stdout and "sweep" in result.stdout
    else:
        missing = [option for option in RUN_OPTIONS if option not in result.stdout]
        assert not missing, result.stdout


def test_unreachable_ray_address_fails_fast(cli, assert_one_line_error, tmp_path):
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    result = cli(
        "fedlife-sim", "run", "--ray-address", f"127.0.0.1:{port}", "--out", tmp_path / "runs"
    )
    assert time.monotonic() - started < 90  # Ray retries an unreachable cluster for minutes
    assert_one_line_error(result, f"127.0.0.1:{port}", "not reachable")
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("args", "needles"),
    [(["--canaries", "7"], ["canaries"]), (["--epsilon", "0"], ["epsilon"])],
    ids=["odd canaries", "epsilon 0"],
)
def test_bad_audit_option_is_one_line_and_writes_nothing(
    cli, assert_one_line_error, tmp_path, args, needles
):
    out = tmp_path / "audit"
    result = cli("fedlife-sim", "audit", *args, "--out", out)
    assert_one_line_error(result, *needles)
    assert not out.exists()


def test_audit_refuses_a_used_folder(cli, assert_one_line_error, tmp_path):
    """Sites' ledgers in a used folder would carry over: the audit starts afresh only."""
    out = tmp_path / "audit"
    (out / "dp").mkdir(parents=True)
    result = cli("fedlife-sim", "audit", "--out", out)
    assert_one_line_error(result, str(out), "not empty")
    assert [p.name for p in out.iterdir()] == ["dp"]


def test_retain_without_virtual_sites_is_one_line(cli, assert_one_line_error, tmp_path):
    result = cli("fedlife-sim", "retain", tmp_path)

    assert_one_line_error(result, str(tmp_path), "no virtual sites")


def test_the_cli_rejects_options_without_loading_ray_flower_or_torch():
    """They load once a run starts: every option error and --help would pay their import
    (about 3 s of CPU on a 2-core machine) for nothing."""
    probe = (
        "import sys, simulations.cli\n"
        "print(','.join(m for m in ('ray', 'flwr', 'torch', 'sklearn') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()

    assert loaded == ""
