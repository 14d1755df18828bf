"""What the server learned in one round, as observers (progress bars, TensorBoard) see it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RoundReport:
    """Everything the server learned in one round."""

    round: int
    num_rounds: int
    participants: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[dict[str, str]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    train: dict[str, float] = field(default_factory=dict)
    federated: dict[str, float] = field(default_factory=dict)
    per_site: dict[str, dict[str, float]] = field(default_factory=dict)
    central: dict[str, float] = field(default_factory=dict)
    fairness: dict[str, Any] = field(default_factory=dict)
    importance: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0


def round_record(report: RoundReport, stopped: str = "") -> dict[str, Any]:
    """The round as ``metrics.jsonl`` records it (``stopped``: why the run ended there)."""
    line = {k: v for k, v in report.__dict__.items() if k != "num_rounds"}
    if stopped:
        line["stopped"] = stopped
    return line
