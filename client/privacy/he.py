"""Site side of encrypted aggregation: load the secret context, encrypt, decrypt.

Sites encrypt their full weights (not deltas): the weighted sum of weights is the new
global model directly, so the coordinator needs no plaintext reference to add a delta to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import keys
from common.errors import EncryptionError
from common.he_keys import (
    SECRET_CONTEXT_FILE,
    SLOTS,
    key_id,
    make_secret_context,
    parameters,
    public_bytes,
)
from common.tenseal_module import tenseal

__all__ = [
    "context_for",
    "decrypt",
    "encrypt",
    "flatten",
    "load_context",
    "make_secret_context",
    "public_bytes",
    "site_context",
    "unflatten",
]


def load_context(data: bytes, *, need_secret: bool) -> Any:
    """Load a serialised context; ``need_secret`` refuses one without a secret key."""
    ts = tenseal()
    try:
        ctx = ts.context_from(data)
    except Exception as err:
        raise EncryptionError(f"not a TenSEAL context: {type(err).__name__}") from None
    if need_secret and not ctx.has_secret_key():
        raise EncryptionError(
            "the HE context has no secret key: a site needs its bundle's secret context"
        )
    return ctx


def site_context(site_folder: Path) -> tuple[Any, str]:
    """The site's secret context (``he-secret.context`` in its bundle, or beside its
    site.toml in a simulation) and its key id; a one-line error when there is none."""
    ctx, own_key, _ = _site_keys(site_folder)
    return ctx, own_key


def _site_keys(site_folder: Path) -> tuple[Any, str, str]:
    """The site's secret context, its key id and its parameters."""
    path = Path(site_folder) / SECRET_CONTEXT_FILE
    if not path.is_file():
        raise EncryptionError(
            f"encrypted aggregation is on but {path} is missing: the site bundle has no "
            "secret HE context (fedlife-coord provision --he writes it)"
        )
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest not in _LOADED:
        # Once per process and content: a simulation's worker answers many virtual
        # sites that hold the same key in separate files, and loading it costs ~50 ms
        # (the HE round's largest extra cost while each message loaded it again,
        # docs/benchmarks.md). Keyed by content, an edited file is loaded anew.
        if len(_LOADED) >= _MAX_LOADED:
            _LOADED.pop(next(iter(_LOADED)))
        ctx = load_context(data, need_secret=True)
        _LOADED[digest] = (ctx, key_id(ctx), parameters(ctx))
    return _LOADED[digest]


_LOADED: dict[str, tuple[Any, str, str]] = {}
_MAX_LOADED = 8


def encrypt(ctx: Any, vector: np.ndarray) -> list[bytes]:
    """Encrypt a flat float vector as serialised CKKS vectors, one per ``SLOTS`` chunk."""
    ts = tenseal()
    flat = np.asarray(vector, dtype=np.float64).ravel()
    return [
        ts.ckks_vector(ctx, flat[i : i + SLOTS].tolist()).serialize()
        for i in range(0, flat.size, SLOTS)
    ]


def decrypt(ctx: Any, chunks: list[bytes]) -> np.ndarray:
    """Decrypt serialised CKKS chunks with the secret context back to one flat vector."""
    ts = tenseal()
    if not ctx.has_secret_key():
        raise EncryptionError("cannot decrypt with a public HE context")
    try:
        parts = [ts.ckks_vector_from(ctx, c).decrypt() for c in chunks]
    except Exception as err:
        raise EncryptionError(
            f"ciphertext does not load under this context: {type(err).__name__}"
        ) from None
    return (
        np.concatenate([np.asarray(p, dtype=np.float64) for p in parts]) if parts else np.zeros(0)
    )


def flatten(state_dict: dict[str, torch.Tensor]) -> np.ndarray:
    """A model's weights as one float vector, in state-dict order."""
    return np.concatenate([t.detach().cpu().double().numpy().ravel() for t in state_dict.values()])


def unflatten(vector: np.ndarray, template: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``vector`` cut back into ``template``'s names, shapes and dtypes."""
    sizes = [t.numel() for t in template.values()]
    if vector.size < sum(sizes):
        raise EncryptionError(
            f"the encrypted model has {vector.size} values, the model needs {sum(sizes)}"
        )
    out, start = {}, 0
    for (name, tensor), size in zip(template.items(), sizes, strict=True):
        values = torch.from_numpy(vector[start : start + size].copy()).reshape(tensor.shape)
        out[name] = values.to(tensor.dtype)
        start += size
    return out


def federation_context(site_folder: Path, wanted_key_id: str, wanted_parameters: str = "") -> Any:
    """The site's secret context, refused when its parameters are not the coordinator's
    (``wanted_parameters``, '' = not told) or its key is not the one the coordinator
    aggregates under."""
    ctx, own, own_parameters = _site_keys(site_folder)
    if wanted_parameters and own_parameters != wanted_parameters:
        raise EncryptionError(
            f"the site's HE context has {own_parameters}, the coordinator's "
            f"{wanted_parameters}: its secret context does not match the federation's"
        )
    if own != wanted_key_id:
        raise EncryptionError(
            f"the site's HE key {own} is not the federation's {wanted_key_id}: "
            "its secret context comes from another provisioning"
        )
    return ctx


def context_for(config: Mapping[str, Any], site_folder: Path) -> Any:
    """The secret context for a coordinator's message ``config`` (its key id and
    parameters), from ``site_folder`` (the site's bundle)."""
    wanted = str(config[keys.HE_KEY_ID]), str(config.get(keys.HE_PARAMS, ""))
    return federation_context(site_folder, *wanted)


def decrypt_state(
    ctx: Any, chunks: list[bytes], template: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The encrypted global model, decrypted into ``template``'s names and shapes."""
    return unflatten(decrypt(ctx, chunks), template)
