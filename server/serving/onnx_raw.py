"""An ONNX graph on RAW columns: the feature contract's scaling inside the graph.

``model_raw.onnx`` takes two inputs, so a caller needs no fedlife code at all:

- ``numeric`` (float32, batch x numeric columns): raw values in the order of
  ``raw_inputs.json``'s ``numeric``, NaN for a missing value;
- ``categories`` (int64, batch x categorical columns): per column the index of
  the value in ``raw_inputs.json``'s ``categories[column]`` list, -1 for missing.

It clips to the public ranges, applies the log or linear unit scale, standardises
with the federation's centers and spreads (clipped at 5 spreads) or maps to
[-1, 1], fills missing values with 0 (the center) and returns the logits, as
:meth:`common.features.FeatureSpec.scaled_features` then the model do. Float32
inside the graph against polars' float64: agreement is to ~1e-6, not bit for bit.
"""

from __future__ import annotations

import io
import json
import math
import warnings

import torch
from torch import nn

from common.features import ONE_HOT, FeatureSpec
from server.serving.records import raw_columns

ONNX_RAW = "model_raw.onnx"
RAW_INPUTS = "raw_inputs.json"
_MAX_Z = 5.0  # as common.features: standardised values are clipped at 5 spreads


class RawInputModel(nn.Module):
    """Raw numeric values and category codes -> logits, through ``spec``'s contract."""

    # Buffers registered in __init__ (register_buffer hides their type from a checker).
    source: torch.Tensor
    code: torch.Tensor
    is_category: torch.Tensor
    is_log: torch.Tensor
    low: torch.Tensor
    width: torch.Tensor
    log_width: torch.Tensor
    center: torch.Tensor
    spread: torch.Tensor

    def __init__(self, model: nn.Module, spec: FeatureSpec) -> None:
        super().__init__()
        numeric, categories = raw_columns(spec)
        columns = list(categories)
        scales = spec.scales or ["linear"] * spec.num_features
        source, code, is_log = [], [], []
        for name, scale in zip(spec.features, scales, strict=True):
            if ONE_HOT in name:
                column, value = name.split(ONE_HOT, 1)
                source.append(columns.index(column))
                code.append(categories[column].index(value))
            else:
                source.append(numeric.index(name))
                code.append(-1)  # a numeric feature
            is_log.append(scale == "log")
        self.model = model
        self.register_buffer("source", torch.tensor(source, dtype=torch.long))
        self.register_buffer("code", torch.tensor(code, dtype=torch.long))
        self.register_buffer("is_category", torch.tensor([c >= 0 for c in code]))
        self.register_buffer("is_log", torch.tensor(is_log))
        self.register_buffer("low", torch.tensor(spec.lows, dtype=torch.float32))
        self.register_buffer("width", torch.tensor(spec.highs, dtype=torch.float32) - self.low)
        widths = [h - lo for lo, h in zip(spec.lows, spec.highs, strict=True)]
        self.register_buffer(
            "log_width", torch.tensor([math.log1p(w) for w in widths], dtype=torch.float32)
        )
        self.standardise = bool(spec.centers)
        self.register_buffer("center", torch.tensor(spec.centers or [0.0], dtype=torch.float32))
        self.register_buffer("spread", torch.tensor(spec.spreads or [1.0], dtype=torch.float32))

    def forward(self, numeric: torch.Tensor, categories: torch.Tensor) -> torch.Tensor:
        numeric_part = numeric.index_select(1, self.source.clamp(max=numeric.size(1) - 1))
        codes = categories.index_select(1, self.source.clamp(max=categories.size(1) - 1))
        indicator = (codes == self.code).to(torch.float32)
        raw = torch.where(self.is_category, indicator, numeric_part)
        # Boolean logic, not where(): onnxruntime has no Where kernel on booleans.
        missing = (self.is_category & (codes < 0)) | (~self.is_category & torch.isnan(numeric_part))
        offset = torch.minimum(torch.maximum(raw, self.low), self.low + self.width) - self.low
        unit = torch.where(self.is_log, torch.log1p(offset) / self.log_width, offset / self.width)
        if self.standardise:
            scaled = ((unit - self.center) / self.spread).clamp(-_MAX_Z, _MAX_Z)
        else:
            scaled = unit * 2 - 1
        return self.model(torch.where(missing, torch.zeros_like(scaled), scaled))


def raw_inputs(spec: FeatureSpec) -> dict[str, object]:
    """What ``raw_inputs.json`` says: the column order of both inputs, the category codes."""
    numeric, categories = raw_columns(spec)
    return {"numeric": numeric, "categories": categories, "classes": list(spec.classes)}


def onnx_raw_bytes(model: nn.Module, spec: FeatureSpec, *, opset: int) -> bytes:
    """``model`` behind the contract's scaling, as ONNX on raw columns (see the module).

    An input with no column (no numeric, or no categorical column) has one dummy
    column, which the graph ignores.
    """
    numeric, categories = raw_columns(spec)
    wrapped = RawInputModel(model, spec).eval()
    example = (
        torch.zeros(2, max(len(numeric), 1)),
        torch.zeros(2, max(len(categories), 1), dtype=torch.long),
    )
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation notices
        torch.onnx.export(
            wrapped,
            example,
            buffer,  # type: ignore[arg-type]  # export writes file objects; its annotation names paths
            dynamo=False,
            input_names=["numeric", "categories"],
            output_names=["logits"],
            dynamic_axes={
                "numeric": {0: "batch"},
                "categories": {0: "batch"},
                "logits": {0: "batch"},
            },
            opset_version=opset,
        )
    return buffer.getvalue()


def raw_inputs_json(spec: FeatureSpec) -> bytes:
    return (json.dumps(raw_inputs(spec), indent=2) + "\n").encode()
