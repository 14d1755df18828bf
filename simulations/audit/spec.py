"""One privacy audit's settings, checked before anything heavy is imported."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from server.run_dir import default_run_dir


@dataclass(frozen=True)
class AuditSpec:
    """One privacy audit.

    Parameters
    ----------
    dataset : bundled dataset.
    sites : virtual sites; member canaries are spread evenly over them.
    canaries : canaries in all, half members and half not.
    rounds, local_epochs, batch_size, learning_rate, momentum : training, the same
        in both runs; long enough that the model without DP overfits.
    epsilon, delta : the DP run's per-site budget.
    test_fraction : rows held out for the coordinator's accuracy.
    seed : seeds the split, canaries and training.
    out : a new folder for the two runs ('' = ``runs/audit-<timestamp>``).
    """

    dataset: str = "digits"
    sites: int = 2
    canaries: int = 600
    rounds: int = 3
    local_epochs: int = 20
    batch_size: int = 64
    learning_rate: float = 0.05
    momentum: float = 0.9
    model: str = "mlp"
    epsilon: float = 1.0
    delta: float = 1e-5
    test_fraction: float = 0.1
    seed: int = 0
    out: str = ""
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.canaries < 20 or self.canaries % 2:
            raise ConfigError(f"--canaries must be an even number >= 20, got {self.canaries}")
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise ConfigError(f"--epsilon must be > 0, got {self.epsilon}")
        if self.sites < 1 or self.rounds < 1 or self.local_epochs < 1:
            raise ConfigError("--sites, --rounds and --local-epochs must be >= 1")

    def out_dir(self) -> Path:
        """The audit's folder: ``out`` or ``runs/audit-<time>``, refused when it holds
        anything (sites' ledgers would carry over)."""
        out = Path(self.out or Path("runs") / f"audit-{default_run_dir().name}")
        if out.exists() and any(out.iterdir()):
            raise ConfigError(
                f"{out}: audit folder exists and is not empty (sites' ledgers would carry over)"
            )
        return out
