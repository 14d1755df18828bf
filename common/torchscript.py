"""The exported model as TorchScript: a forward that takes encoded features.

Apart from :mod:`common.model_bundle` so that checking an export target (and every CLI
that imports the registry) does not import torch.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from common.features import FeatureSpec


class EncodedModel(nn.Module):
    """The exported model: its forward takes features encoded by ``feature_spec``.

    Input: a float32 tensor (batch, num_features), each column encoded as
    :meth:`FeatureSpec.encode` does (clipped to its public range, mapped to [-1, 1]
    or standardised). Output: logits (batch, num_classes) in the order of
    ``classes``. ``feature_spec`` holds the whole contract as JSON.
    """

    def __init__(self, model: nn.Module, spec: FeatureSpec) -> None:
        super().__init__()
        self.model = model
        self.num_features = spec.num_features
        self.features = list(spec.features)
        self.classes = list(spec.classes)
        self.feature_spec = spec.to_json()

    def forward(self, encoded: torch.Tensor) -> torch.Tensor:
        if encoded.dim() != 2 or encoded.size(1) != self.num_features:
            raise ValueError(
                "expected encoded features of shape (batch, "
                + str(self.num_features)
                + "), see the feature_spec attribute"
            )
        return self.model(encoded)


def scripted_model(model: nn.Module, spec: FeatureSpec) -> torch.jit.ScriptModule:
    """TorchScript of ``model`` wrapped in :class:`EncodedModel` (traced if scripting fails)."""
    module = EncodedModel(model, spec)
    module.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's own notice
        try:
            return torch.jit.script(module)
        except Exception:  # noqa: BLE001 - fall back to tracing
            return torch.jit.trace(module, torch.zeros(1, spec.num_features))
