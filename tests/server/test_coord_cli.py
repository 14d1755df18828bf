"""``fedlife-coord``: help, and a folder that is not a run."""

from __future__ import annotations

import pytest


def test_summary_of_a_folder_without_run_json(cli, assert_one_line_error, tmp_path):
    folder = tmp_path / "notarun"
    folder.mkdir()
    (folder / "summary.json").write_text("{}")  # a summary alone does not make a run
    result = cli("fedlife-coord", "summary", folder)
    assert_one_line_error(result, str(folder), "run.json")
    assert sorted(p.name for p in folder.iterdir()) == ["summary.json"]


def test_report_of_a_folder_without_run_json(cli, assert_one_line_error, tmp_path):
    folder = tmp_path / "notarun"
    folder.mkdir()
    result = cli("fedlife-coord", "report", folder)
    assert_one_line_error(result, str(folder), "run.json")
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "commands"),
    [(["--help"], ["summary", "models", "report"]), (["models", "--help"], ["list"])],
    ids=["coord", "models"],
)
def test_help(cli, args, commands):
    result = cli("fedlife-coord", *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Usage" in result.stdout
    missing = [command for command in commands if command not in result.stdout]
    assert not missing, result.stdout
