"""Load a federation's global model at the site, to score its own rows.

``path`` may be what ``fedlife-coord models export`` writes (the folder, or its
``model.torchscript.pt``, which carries the feature spec inside), or a run directory
(``run.json`` + ``models/``), whose newest checkpoint is used.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import polars as pl
import torch

from client.privacy import he
from common import keys
from common.errors import ConfigError, DataError, FedlifeError
from common.features import FeatureSpec
from common.models import build_model

if TYPE_CHECKING:
    from flwr.app import Message

TORCHSCRIPT, FEATURE_SPEC = "model.torchscript.pt", "feature_spec.json"
_CHECKPOINT = re.compile(r"round-(\d+)\.pt")


@dataclass(frozen=True)
class GlobalModel:
    """A model with the feature contract it was trained on.

    Parameters
    ----------
    module : maps encoded features (float32, rows x features) to logits.
    spec : how to encode a site's rows for it.
    source : where it was loaded from.
    """

    module: torch.nn.Module
    spec: FeatureSpec
    source: str

    def encode(self, frame: pl.DataFrame) -> np.ndarray:
        """``frame``'s features as the model expects them (the label is not needed)."""
        try:
            return frame.select(self.spec.scaled_features()).to_numpy().astype(np.float32)
        except pl.exceptions.ColumnNotFoundError as error:
            first = str(error).strip().splitlines()[0]
            raise DataError(f"{self.source}: the site lacks a model feature ({first})") from None

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        with torch.no_grad():
            logits = self.module(torch.from_numpy(self.encode(frame)))
        return torch.softmax(logits, dim=1).numpy()


def load_global_model(path: str | Path) -> GlobalModel:
    """The model at ``path`` (see the module's docstring); a one-line error otherwise."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: model not found")
    if path.is_dir() and (path / TORCHSCRIPT).is_file():
        path = path / TORCHSCRIPT
    if path.is_dir():
        return _from_run_dir(path)
    extra = {FEATURE_SPEC: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
        spec = FeatureSpec.from_json(extra[FEATURE_SPEC])
    except (RuntimeError, ValueError, TypeError, FedlifeError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise ConfigError(
            f"{path}: not an exported fedlife model (TorchScript with a feature spec): {first}"
        ) from None
    return GlobalModel(module.eval(), spec, str(path))


def _from_run_dir(run_dir: Path) -> GlobalModel:
    try:
        info = json.loads((run_dir / "run.json").read_text())
        spec = FeatureSpec.from_json(info["feature_spec"])
        name = str(info["config"]["model"])
    except (OSError, ValueError, KeyError, TypeError, FedlifeError):
        raise ConfigError(
            f"{run_dir}: neither an exported model nor a run directory with a feature spec"
        ) from None
    rounds = {
        int(m.group(1)): p
        for p in (run_dir / "models").glob("round-*.pt")
        if (m := _CHECKPOINT.fullmatch(p.name))
    }
    if not rounds:
        raise ConfigError(f"{run_dir}: no checkpoint in models/")
    checkpoint = rounds[max(rounds)]
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
        # Opacus wraps a module as '_module': its checkpoints carry the prefix.
        state = {k.replace("_module.", ""): v for k, v in state.items()}
        module = build_model(name, spec.num_features, spec.num_classes)
        module.load_state_dict(state)
    except Exception as error:  # noqa: BLE001 - any unreadable checkpoint is the user's
        raise ConfigError(f"{checkpoint}: cannot load ({type(error).__name__})") from None
    return GlobalModel(module.eval(), spec, str(checkpoint))


def received_model(message: Message, spec: FeatureSpec, keys_folder: Path) -> torch.nn.Module:
    """The model the message carries; under encrypted aggregation the site checks its key
    first and decrypts the global model (round 1's initial model comes in the clear)."""
    config = message.content.config_records[keys.CONFIG]
    model = build_model(str(config[keys.MODEL]), spec.num_features, spec.num_classes)
    if bool(config.get(keys.HE, False)):
        ctx = he.context_for(config, keys_folder)
        if keys.ENCRYPTED in message.content:
            # bytes: the server's message, built from the wire contract's EncryptedRecord
            chunks = cast(list[bytes], message.content.config_records[keys.ENCRYPTED][keys.CHUNKS])
            model.load_state_dict(he.decrypt_state(ctx, chunks, model.state_dict()))
            return model
    model.load_state_dict(message.content.array_records[keys.ARRAYS].to_torch_state_dict())
    return model
