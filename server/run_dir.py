"""The run directory: metrics, checkpoints with lineage, summary and plots.

Layout::

    <run_dir>/run.json            run id, run config, feature spec
    <run_dir>/metrics.jsonl       one line per round (metrics, participants, exclusions)
    <run_dir>/models/round-NNN.pt checkpoint of the global model after round NNN
    <run_dir>/models/strategy-NNN.pt the strategy's state then (adaptive optimisers)
    <run_dir>/model.pt            the final global model (a plain state dict)
    <run_dir>/summary.json        what scripts read: accuracy, rounds, epsilon per site
    <run_dir>/audit/audit.jsonl   the coordinator's hash-chained audit log of the run
    <run_dir>/*.png               accuracy, loss and epsilon plots
"""

from __future__ import annotations

import json
import math
import os
import uuid
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.atomic_files import write_atomically
from common.audit import AuditLog
from common.errors import RunDirError

if TYPE_CHECKING:
    import torch

# torch is imported where a checkpoint is read or written: every coordinator command
# imports this module, most of them to read JSON, and torch takes seconds to import.


def default_run_dir(base: str | Path = "runs") -> Path:
    return Path(base) / datetime.now().strftime("%Y%m%d-%H%M%S-%f")


def writable_folder(path: str | Path, *, what: str) -> Path:
    """Make the folder ``path`` (or fail with one line naming ``what`` if it cannot be written)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise RunDirError(f"{path}: {what} is not writable ({error.strerror})") from None
    return path


class RunDirectory:
    """Reads and writes one run's directory.

    Parameters
    ----------
    path : the run directory.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path) -> RunDirectory:
        """Make the directory (or fail with one line if it cannot be written)."""
        run = cls(writable_folder(path, what="run directory"))
        (run.path / "models").mkdir(exist_ok=True)
        return run

    def start(self, run_config: dict[str, Any]) -> str:
        """Record the run's config; return its id (kept across resumes)."""
        run_id = self.info().get("run_id") or uuid.uuid4().hex[:12]
        self.update_info(run_id=run_id, config=run_config)
        return run_id

    def audit(self) -> AuditLog:
        """The coordinator's audit log of this run (``<run_dir>/audit/``)."""
        return AuditLog(self.path / "audit", "coordinator")

    def info(self) -> dict[str, Any]:
        """run.json, or nothing yet."""
        return self.read_json("run.json") if (self.path / "run.json").exists() else {}

    def update_info(self, **fields: Any) -> None:
        self.write_json("run.json", {**self.info(), **fields})

    def append_round(self, record: dict[str, Any]) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as handle:
            handle.write(json.dumps(finite(record), default=_jsonable) + "\n")

    def rounds(self) -> list[dict[str, Any]]:
        """Every recorded round; a last line torn by a crash is not a round."""
        path = self.path / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        lines = [line for line in path.read_text().splitlines() if line.strip()]
        for number, line in enumerate(lines, start=1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise RunDirError(f"{path}: line {number} is not JSON") from None
        return records

    def completed_rounds(self) -> list[dict[str, Any]]:
        return [r for r in self.rounds() if "stopped" not in r]

    @classmethod
    def open_for_resume(cls, path: str | Path) -> RunDirectory:
        """A run directory that can be resumed, or a one-line error."""
        run = cls(path)
        if not (run.path / "run.json").is_file():
            raise RunDirError(f"{run.path}: not a fedlife run directory (no run.json)")
        info = run.read_json("run.json")
        if "run_id" not in info or "feature_spec" not in info:
            raise RunDirError(f"{run.path}: run.json records no started run to resume")
        return run

    def load_checkpoint(self, server_round: int) -> tuple[dict[str, torch.Tensor], dict]:
        """The global model after ``server_round`` and the strategy's state then."""
        import torch

        path = self.path / "models" / f"round-{server_round:03d}.pt"
        try:
            weights = torch.load(path, weights_only=True)
            state_path = self._strategy_path(server_round)
            state = torch.load(state_path, weights_only=False) if state_path.exists() else {}
        except Exception as error:  # noqa: BLE001 - any unreadable file is the same to the user
            raise RunDirError(f"{path}: checkpoint is corrupt ({type(error).__name__})") from None
        if not isinstance(weights, dict):
            raise RunDirError(f"{path}: checkpoint is not a state dict")
        return weights, state

    def save_checkpoint(
        self, server_round: int, state_dict: dict[str, torch.Tensor], strategy_state: dict
    ) -> Path:
        """Write the round's model (and strategy state) atomically: never half a file."""
        import torch

        target = self.path / "models" / f"round-{server_round:03d}.pt"
        for data, path in (
            (strategy_state, self._strategy_path(server_round)),
            (state_dict, target),
        ):
            temporary = path.with_suffix(".tmp")
            torch.save(data, temporary)
            os.replace(temporary, path)
        return target

    def _strategy_path(self, server_round: int) -> Path:
        return self.path / "models" / f"strategy-{server_round:03d}.pt"

    def save_final_model(self, state_dict: dict[str, torch.Tensor]) -> Path:
        import torch

        torch.save(state_dict, self.path / "model.pt")
        return self.path / "model.pt"

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        target = self.path / name
        write_atomically(target, json.dumps(finite(data), indent=2, default=_jsonable) + "\n")
        return target

    def read_json(self, name: str) -> dict[str, Any]:
        try:
            return json.loads((self.path / name).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirError(f"{self.path / name}: cannot read ({error})") from None


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None (valid JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
