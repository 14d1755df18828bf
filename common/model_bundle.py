"""The exported model bundle, one format whoever writes it.

``fedlife-coord models export`` writes a checkpoint of the registry; ``fedlife-site
model export`` writes the final model of an encrypted run that the site decrypted::

    <out>/model_state_dict.pt    plain state dict (no Opacus '_module.' prefixes)
    <out>/model.torchscript.pt   TorchScript module; forward takes ENCODED features
                                 (the output of FeatureSpec.encode), returns logits
    <out>/feature_spec.json      the encoding contract (FeatureSpec.to_json())
    <out>/lineage.json           where the model came from
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import RunDirError
from common.features import FeatureSpec

# torch loads where a bundle is written: checking a target, and the CLIs that import
# this module, need none.
if TYPE_CHECKING:
    from torch import nn

STATE_DICT = "model_state_dict.pt"
TORCHSCRIPT = "model.torchscript.pt"
FEATURE_SPEC = "feature_spec.json"
LINEAGE = "lineage.json"


def check_target(out_dir: Path, *, force: bool) -> None:
    """Refuse to replace a bundle ``out_dir`` already holds unless ``force``: an
    export is what a deployment loads, and silently swapping it loses the one it had."""
    if not force and out_dir.is_dir() and (out_dir / LINEAGE).exists():
        raise RunDirError(f"{out_dir}: already holds an exported model (--force replaces it)")
    if out_dir.exists() and not out_dir.is_dir():
        raise RunDirError(f"{out_dir}: exists and is not a directory")


def write_bundle(
    out_dir: str | Path,
    model: nn.Module,
    spec: FeatureSpec,
    lineage: dict[str, Any],
    *,
    force: bool = False,
    extra: dict[str, bytes] | None = None,
) -> list[Path]:
    """Write ``model`` as a bundle into ``out_dir``; the paths written.

    Everything is written to a temporary sibling folder first; ``out_dir`` only
    receives complete bundles.

    Parameters
    ----------
    out_dir : the bundle's folder.
    model : the model (plain, not wrapped), taking encoded features.
    spec : its feature contract.
    lineage : where it came from (JSON-serialisable).
    force : replace a bundle ``out_dir`` already holds.
    extra : more files (name -> content), e.g. ONNX and a model card.
    """
    import torch

    from common.torchscript import scripted_model

    out_dir = Path(out_dir)
    check_target(out_dir, force=force)
    state = model.state_dict()
    scripted = scripted_model(model, spec)
    text = json.dumps(lineage, indent=2) + "\n"
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp's 0700 would become out_dir's
    except OSError as error:
        raise RunDirError(f"{out_dir}: cannot write ({error.strerror})") from None
    try:
        torch.save(state, staging / STATE_DICT)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's notice
            torch.jit.save(
                scripted,
                str(staging / TORCHSCRIPT),
                _extra_files={FEATURE_SPEC: spec.to_json(), LINEAGE: text},
            )
        (staging / FEATURE_SPEC).write_text(spec.to_json() + "\n")
        (staging / LINEAGE).write_text(text)
        names = [STATE_DICT, TORCHSCRIPT, FEATURE_SPEC, LINEAGE]
        for name, content in (extra or {}).items():
            (staging / name).write_bytes(content)
            names.append(name)
        _publish(staging, out_dir, names)
    except OSError as error:
        raise RunDirError(f"{out_dir}: cannot write ({error.strerror})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [out_dir / name for name in names]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish(staging: Path, out_dir: Path, names: list[str]) -> None:
    """Move the finished files into ``out_dir`` (one rename if it is new or empty)."""
    if not out_dir.exists() or not any(out_dir.iterdir()):
        os.replace(staging, out_dir)
        return
    for name in names:
        os.replace(staging / name, out_dir / name)
