"""The model a service or a batch scoring job uses, from a run directory or an export.

A run directory gives any round's checkpoint (``--round``, default the last) through
:class:`server.registry.registry.Registry`; an exported bundle gives the TorchScript
module it holds. Either way the model comes with its feature contract, its lineage,
its model card and the federation's released training histograms (the drift
reference), all things the coordinator holds.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import RunDirError
from common.features import FeatureSpec
from common.model_bundle import FEATURE_SPEC, LINEAGE, TORCHSCRIPT
from common.run_config import RunConfig
from common.stats import CategoryStats
from server.registry.registry import Registry
from server.serving.card import CARD_JSON, REFERENCE, model_card, reference_histograms

# A run records its own drift-threshold; this is for one that does not.
DEFAULT_DRIFT_THRESHOLD = RunConfig.model_fields["drift_threshold"].default


@dataclass
class ServedModel:
    """A model with its contract, ready to answer encoded features.

    Parameters
    ----------
    module : maps encoded features (float32, rows x features) to logits.
    spec : the feature contract (how raw records are encoded).
    card : the model card (see :func:`server.serving.card.model_card`).
    reference : column -> the federation's released training histogram.
    drift_threshold : PSI above which a served feature is flagged.
    source : where it was loaded from.
    """

    module: torch.nn.Module
    spec: FeatureSpec
    card: dict[str, Any]
    reference: dict[str, CategoryStats] = field(default_factory=dict)
    drift_threshold: float = DEFAULT_DRIFT_THRESHOLD
    source: str = ""

    def current(self) -> ServedModel:
        """The model to answer with: itself (see :class:`server.serving.follow.ProductionModel`)."""
        return self

    def predict_proba(self, encoded: np.ndarray) -> np.ndarray:
        """Class probabilities (rows x classes) of encoded features."""
        with torch.no_grad():
            logits = self.module(torch.from_numpy(np.ascontiguousarray(encoded, np.float32)))
        return torch.softmax(logits, dim=1).numpy()


def load_served_model(path: str | Path, *, server_round: int | None = None) -> ServedModel:
    """The model of a run directory (round ``server_round``, default the last) or an export."""
    path = Path(path)
    if not path.exists():
        raise RunDirError(f"{path}: no such run directory or exported model")
    if (path / "run.json").is_file():
        return _from_run_dir(path, server_round)
    if (path / TORCHSCRIPT).is_file():
        if server_round is not None:
            raise RunDirError(f"{path}: an exported model holds one round; drop --round")
        return _from_bundle(path)
    raise RunDirError(f"{path}: neither a run directory (run.json) nor an exported model")


def _from_run_dir(path: Path, server_round: int | None) -> ServedModel:
    registry = Registry(path)
    record, spec, module = registry.load(server_round)
    card = model_card(registry, record, spec)
    return ServedModel(
        module.eval(),
        spec,
        card,
        reference_histograms(registry.run.path),
        float(registry.config.get("drift-threshold", DEFAULT_DRIFT_THRESHOLD)),
        str(record.path),
    )


def _from_bundle(path: Path) -> ServedModel:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path / TORCHSCRIPT), map_location="cpu")
        spec = FeatureSpec.from_json((path / FEATURE_SPEC).read_text())
        card = (
            json.loads((path / CARD_JSON).read_text())
            if (path / CARD_JSON).is_file()
            else {"lineage": json.loads((path / LINEAGE).read_text())}
        )
        reference = {}
        if (path / REFERENCE).is_file():
            data = json.loads((path / REFERENCE).read_text())
            reference = {c: CategoryStats.from_dict(h) for c, h in data.items()}
    except Exception as error:  # noqa: BLE001 - any unreadable bundle is the user's
        raise RunDirError(
            f"{path}: not a readable exported model ({type(error).__name__})"
        ) from None
    threshold = float(card.get("drift", {}).get("threshold", DEFAULT_DRIFT_THRESHOLD))
    return ServedModel(module.eval(), spec, card, reference, threshold, str(path))
