"""Every error type lives in common/errors.py; no bare ValueError crosses a public API."""

from __future__ import annotations

import ast
from pathlib import Path

import common.errors as errors

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("client", "server", "simulations", "common")
# Pydantic validators raise ValueError, which pydantic turns into a ValidationError
# (a ConfigError via common.strict_model.validate_as; in common/wire a WireError); the
# seed parser's is caught by split_values.
VALUE_ERROR_ALLOWED = {
    "common/config.py",
    "common/run_config.py",
    "common/labeling.py",
    "common/wire/messages.py",
    "common/wire/assessment.py",
    "common/wire/values.py",
    "common/wire/encrypted.py",
    "server/he_rounds.py",  # a ciphertext check the encrypted reply's validator calls
    "simulations/sweep_cli.py",
}


def modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def test_exception_classes_are_defined_only_in_common_errors():
    elsewhere = [
        f"{name}: {node.name}"
        for name, tree in modules()
        if name != "common/errors.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef)
        and any(getattr(b, "id", "").endswith(("Error", "Exception")) for b in node.bases)
    ]
    assert elsewhere == []
    for name in ("CoordinatorError", "FederationError", "LedgerError"):
        assert issubclass(getattr(errors, name), errors.FedlifeError)


def test_no_bare_value_or_runtime_error_is_raised():
    raised = [
        f"{name}:{node.lineno}"
        for name, tree in modules()
        if name not in VALUE_ERROR_ALLOWED
        for node in ast.walk(tree)
        if isinstance(node, ast.Raise)
        and isinstance(node.exc, ast.Call)
        and getattr(node.exc.func, "id", "") in ("ValueError", "RuntimeError")
    ]
    assert raised == ["common/torchscript.py:36"]  # inside a TorchScript model
