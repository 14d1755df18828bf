"""What the package declares matches what it is: versions, defaults, dependencies."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions, version
from pathlib import Path

import pytest

from common.cli import console_script
from common.run_config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@pytest.mark.parametrize("cli", ["fedlife-site", "fedlife-coord", "fedlife-sim"])
def test_every_cli_prints_the_installed_version(cli):
    result = subprocess.run(
        [console_script(cli), "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"fedlife {version('fedlife')}"


def test_flwr_run_defaults_are_the_run_configs_own():
    """``flwr run .`` reads pyproject's run config: it must say what RunConfig says."""
    assert PYPROJECT["tool"]["flwr"]["app"]["config"] == RunConfig().to_flower()


def _third_party_imports() -> set[str]:
    ours = {"common", "client", "server", "simulations"}
    found = set()
    for package in ours:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    found.update(alias.name.split(".")[0] for alias in node.names)
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found - ours - set(sys.stdlib_module_names) - {"__future__"}


def _declared() -> set[str]:
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    extras = project.get("optional-dependencies", {})
    # What the tests need is no run-time dependency: an operator installs no dev extra.
    specs += [s for name, extra in extras.items() if name != "dev" for s in extra]
    names = set()
    for spec in specs:
        name = spec.split(";")[0].split("[")[0]
        for stop in "<>=!~ ":
            name = name.split(stop)[0]
        names.add(name.strip().lower().replace("_", "-"))
    return names


def test_every_module_imported_at_run_time_is_a_declared_dependency():
    """A fresh ``pip install .`` must bring every module the package imports."""
    distributions = packages_distributions()
    undeclared = {}
    for module in sorted(_third_party_imports()):
        owners = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        if not owners & _declared():
            undeclared[module] = sorted(owners)
    assert undeclared == {}
