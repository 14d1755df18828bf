"""What ``models export`` adds to a bundle for serving: ONNX, the model card, drift bins.

``model.onnx`` takes the ENCODED features (input ``encoded``, float32, batch x
features, as :meth:`common.features.FeatureSpec.scaled_features` makes them) and
returns logits (``logits``, batch x classes); encode raw records with the bundle's
``feature_spec.json``. It is written with torch's TorchScript-based ONNX exporter
(opset 17, batch dimension dynamic), which needs no extra package.
``model_raw.onnx`` and ``raw_inputs.json`` take raw columns instead (see
:mod:`server.serving.onnx_raw`).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable

import torch
from torch import nn

from common.features import FeatureSpec
from server.registry.registry import ModelRecord, Registry
from server.serving.card import (
    CARD_JSON,
    CARD_MD,
    REFERENCE,
    card_markdown,
    model_card,
    reference_histograms,
)
from server.serving.onnx_raw import ONNX_RAW, RAW_INPUTS, onnx_raw_bytes, raw_inputs_json

ONNX = "model.onnx"
OPSET = 17


def onnx_bytes(model: nn.Module, num_features: int) -> bytes:
    """``model`` (encoded features -> logits) as an ONNX graph with a dynamic batch."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(
            model.eval(),
            (torch.zeros(2, num_features),),
            buffer,  # type: ignore[arg-type]  # export writes file objects; its annotation names paths
            dynamo=False,
            input_names=["encoded"],
            output_names=["logits"],
            dynamic_axes={"encoded": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=OPSET,
        )
    return buffer.getvalue()


def serving_files(
    registry: Registry,
) -> Callable[[ModelRecord, FeatureSpec, nn.Module], dict[str, bytes]]:
    """The ``extra`` files of :meth:`Registry.export` for a model to be served."""

    def files(record: ModelRecord, spec: FeatureSpec, model: nn.Module) -> dict[str, bytes]:
        card = model_card(registry, record, spec)
        reference = {c: h.to_dict() for c, h in reference_histograms(registry.run.path).items()}
        return {
            ONNX: onnx_bytes(model, spec.num_features),
            ONNX_RAW: onnx_raw_bytes(model, spec, opset=OPSET),
            RAW_INPUTS: raw_inputs_json(spec),
            CARD_JSON: (json.dumps(card, indent=2) + "\n").encode(),
            CARD_MD: card_markdown(card).encode(),
            REFERENCE: (json.dumps(reference, indent=2) + "\n").encode(),
        }

    return files
