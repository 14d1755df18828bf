"""Warm start: a run that begins from another run's model, with lineage to it.

The new run takes the parent's checkpoint and its feature contract (the encoding the
weights were trained for, so no new moments release costs the sites privacy) and
records ``parent`` (run directory, run id, round) in its run.json.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord

from common.errors import FedlifeError, RunDirError
from common.features import FeatureSpec
from common.run_config import RunConfig
from server.registry.registry import Registry, load_state_dict
from server.run_dir import RunDirectory


def parent_lineage(parent_run: str | Path, parent_round: int = 0) -> dict[str, Any]:
    """Which run and round a warm start takes: ``{run_dir, run_id, round}``.

    Raises :class:`RunDirError` when the parent is no run or has no such checkpoint.
    """
    path = Path(parent_run)
    if not path.is_dir():
        raise RunDirError(f"{path}: parent run does not exist")
    registry = Registry(path)
    checkpoints = registry.checkpoints()
    if not checkpoints:
        raise RunDirError(f"{path}: parent run has no checkpoint to start from")
    chosen = parent_round or max(checkpoints)
    registry.show(chosen)  # one line naming the rounds there are, should it be missing
    if not registry.info.get("feature_spec"):
        raise RunDirError(f"{path / 'run.json'}: parent run records no feature_spec")
    return {
        "run_dir": str(path.resolve()),
        "run_id": str(registry.info.get("run_id", "")),
        "round": chosen,
        "model": str(registry.config.get("model", "")),
    }


def warm_start(
    config: RunConfig, run_dir: RunDirectory
) -> tuple[FeatureSpec, ArrayRecord, dict[str, Any]]:
    """The parent's feature contract and weights; ``parent`` is recorded in run.json.

    Parameters
    ----------
    config : the run config; ``parent_run`` and ``parent_round`` name the parent.
    run_dir : the new run's directory.
    """
    lineage = parent_lineage(config.parent_run, config.parent_round)
    if lineage["model"] and lineage["model"] != config.model:
        raise RunDirError(
            f"{config.parent_run}: parent trained model '{lineage['model']}', "
            f"this run asks for '{config.model}'"
        )
    registry = Registry(lineage["run_dir"])
    try:
        spec = FeatureSpec.from_json(registry.info["feature_spec"])
    except (FedlifeError, TypeError, ValueError) as error:
        raise RunDirError(f"{config.parent_run}: invalid feature_spec ({error})") from None
    weights = load_state_dict(registry.checkpoints()[lineage["round"]])
    run_dir.update_info(feature_spec=spec.to_json(), parent=lineage)
    return spec, ArrayRecord(weights), lineage
