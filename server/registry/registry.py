"""The model registry of a run directory: every checkpoint with its lineage.

A :class:`ModelRecord` says where a checkpoint came from: the round, the sites that
trained in it with their table versions, the epsilon each site had spent by then,
the metrics measured on it, the strategy and a hash of the run config.
:meth:`Registry.export` writes one checkpoint as a self-contained bundle
(:mod:`common.model_bundle`), its ``lineage.json`` the ModelRecord.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import FedlifeError, RunDirError
from common.features import FeatureSpec
from common.model_bundle import (
    check_target,
    write_bundle,
)
from server.run_dir import RunDirectory, finite

# torch loads where a model is read or written: listing and showing a registry, and
# every fedlife-coord command that imports it, need no torch.
if TYPE_CHECKING:
    import torch
    from torch import nn

CHECKPOINT = re.compile(r"round-(\d+)\.pt")
OPACUS_PREFIX = "_module."


@dataclass
class ModelRecord:
    """One checkpoint and where it came from.

    Parameters
    ----------
    round : the round after which the checkpoint was saved.
    path : the checkpoint file.
    sites : the sites whose updates were aggregated in this round, each with its
        table version, epsilon and budget, and number of examples.
    epsilon : every site that trained in this or an earlier round -> the epsilon it
        had spent by the end of this round (None: no DP).
    metrics : the round's metrics: central evaluation if there was one, else the
        federated evaluation; ``evaluated_on`` says which.
    strategy, model : from the run config.
    config_hash : sha256 of the run config's sorted JSON, first 16 hex digits.
    unlearning : for a run that replays another without erased data: the run it
        replays, the site and its purged table versions, the round it restarted after.
    """

    round: int
    path: str
    run_id: str
    sites: list[dict[str, Any]] = field(default_factory=list)
    epsilon: dict[str, float | None] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    evaluated_on: str = ""
    excluded: list[dict[str, str]] = field(default_factory=list)
    strategy: str = ""
    model: str = ""
    config_hash: str = ""
    unlearning: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return finite(asdict(self))


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of the config's sorted JSON, first 16 hex digits."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Registry:
    """The checkpoints of one run directory, with their lineage.

    Parameters
    ----------
    run_dir : the run directory (must hold run.json).
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run = RunDirectory(run_dir)
        if not (self.run.path / "run.json").exists():
            raise RunDirError(f"{self.run.path}: not a fedlife run directory (no run.json)")
        self.info = self.run.read_json("run.json")
        self.config: dict[str, Any] = dict(self.info.get("config") or {})

    def checkpoints(self) -> dict[int, Path]:
        """Round -> checkpoint file, for every round-NNN.pt that exists."""
        folder = self.run.path / "models"
        found = {}
        if folder.is_dir():
            for path in folder.iterdir():
                match = CHECKPOINT.fullmatch(path.name)
                if match and path.is_file():
                    found[int(match.group(1))] = path
        return dict(sorted(found.items()))

    def models(self) -> list[ModelRecord]:
        """One record per checkpoint that exists, by round."""
        rounds = self._round_lines()
        return [self._record(n, path, rounds) for n, path in self.checkpoints().items()]

    def show(self, server_round: int) -> ModelRecord:
        checkpoints = self.checkpoints()
        if server_round not in checkpoints:
            have = ", ".join(map(str, checkpoints)) or "none"
            raise RunDirError(
                f"{self.run.path}: no checkpoint for round {server_round} (rounds: {have})"
            )
        return self._record(server_round, checkpoints[server_round], self._round_lines())

    def load(self, server_round: int | None) -> tuple[ModelRecord, FeatureSpec, nn.Module]:
        """Round ``server_round``'s model (None: the last round's), its lineage and spec."""
        if server_round is None:
            checkpoints = self.checkpoints()
            if not checkpoints and self.config.get("he"):
                raise RunDirError(
                    f"{self.run.path}: the model is encrypted (model.he) and no site decrypted "
                    "it for the registry: a site exports it with fedlife-site model export"
                )
            if not checkpoints:
                raise RunDirError(f"{self.run.path}: no checkpoints in models/")
            server_round = max(checkpoints)
        record = self.show(server_round)
        spec = self._spec()
        return record, spec, self._build(record, spec, load_state_dict(Path(record.path)))

    def export(
        self,
        server_round: int | None,
        out_dir: str | Path,
        *,
        force: bool = False,
        extra: Callable[[ModelRecord, FeatureSpec, nn.Module], dict[str, bytes]] | None = None,
    ) -> list[Path]:
        """Write round ``server_round``'s model (None: the last round's) to ``out_dir``
        (:func:`common.model_bundle.write_bundle`: complete bundles only, an existing one
        replaced only with ``force``). ``extra`` returns more files (name -> content)
        for the bundle, e.g. ONNX and a model card.
        """
        out_dir = Path(out_dir)
        check_target(out_dir, force=force)
        record, spec, model = self.load(server_round)
        files = extra(record, spec, model) if extra else {}
        return write_bundle(out_dir, model, spec, record.to_json(), force=force, extra=files)

    def _round_lines(self) -> dict[int, dict[str, Any]]:
        """Round -> its metrics line (the last one, should a resumed run repeat it)."""
        try:
            lines = self.run.rounds()
        except (OSError, json.JSONDecodeError) as error:
            raise RunDirError(f"{self.run.path / 'metrics.jsonl'}: cannot read ({error})") from None
        return {int(line["round"]): line for line in lines if "round" in line}

    def _record(
        self, server_round: int, path: Path, rounds: dict[int, dict[str, Any]]
    ) -> ModelRecord:
        line = rounds.get(server_round, {})
        epsilon: dict[str, float | None] = {}
        for n in sorted(rounds):
            if n > server_round or "stopped" in rounds[n]:
                continue
            for p in rounds[n].get("participants", []):
                epsilon[p["site"]] = _epsilon(p.get("epsilon"))
        central, federated = line.get("central") or {}, line.get("federated") or {}
        sites = [
            {
                "site": p["site"],
                "table_version": p.get("table_version"),
                "labeled_version": p.get("labeled_version", -1),
                "epsilon": _epsilon(p.get("epsilon")),
                "epsilon_budget": p.get("epsilon_budget"),
                "num_examples": p.get("num_examples"),
            }
            for p in line.get("participants", [])
        ]
        return ModelRecord(
            round=server_round,
            path=str(path),
            run_id=str(self.info.get("run_id", "")),
            sites=sites,
            epsilon=dict(sorted(epsilon.items())),
            metrics=dict(central or federated),
            evaluated_on="central" if central else ("federated" if federated else ""),
            excluded=list(line.get("excluded", [])),
            strategy=str(self.config.get("strategy", "")),
            model=str(self.config.get("model", "")),
            config_hash=config_hash(self.config),
            unlearning=dict(self.info.get("unlearning") or {}),
        )

    def _spec(self) -> FeatureSpec:
        text = self.info.get("feature_spec")
        if not text:
            raise RunDirError(f"{self.run.path / 'run.json'}: no feature_spec recorded")
        try:
            return FeatureSpec.from_json(text)
        except (FedlifeError, TypeError, ValueError) as error:
            raise RunDirError(
                f"{self.run.path / 'run.json'}: invalid feature_spec ({error})"
            ) from None

    def _build(
        self, record: ModelRecord, spec: FeatureSpec, state: dict[str, torch.Tensor]
    ) -> nn.Module:
        if not record.model:
            raise RunDirError(f"{self.run.path / 'run.json'}: run config names no model")
        from common.models import build_model

        model = build_model(record.model, spec.num_features, spec.num_classes)
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            first = str(error).strip().splitlines()[-1].strip()
            raise RunDirError(
                f"{record.path}: does not fit model '{record.model}' ({first})"
            ) from None
        return model.eval()


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint's state dict, keys without Opacus's '_module.' prefix."""
    import torch

    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as error:
        raise RunDirError(f"{path}: cannot read checkpoint ({error.strerror})") from None
    except Exception as error:  # noqa: BLE001 - any unreadable file is the user's
        # torch's own message is a paragraph that suggests weights_only=False: not shown
        raise RunDirError(
            f"{path}: cannot load checkpoint: corrupt or not a torch state dict "
            f"({type(error).__name__})"
        ) from None
    if not isinstance(loaded, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in loaded.items()
    ):
        raise RunDirError(f"{path}: not a state dict of tensors")
    state = {}
    for key, value in loaded.items():
        while key.startswith(OPACUS_PREFIX):
            key = key[len(OPACUS_PREFIX) :]
        state[key.replace("." + OPACUS_PREFIX, ".")] = value
    return state


def _epsilon(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None
