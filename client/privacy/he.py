"""Site side of encrypted aggregation: CKKS context, encrypt an update, decrypt the aggregate.

Sites encrypt their full weights (not deltas): the weighted sum of weights is the new
global model directly, so the coordinator needs no plaintext reference to add a delta to.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from common.errors import EncryptionError
from common.tenseal_module import tenseal

# 8192 slots per ciphertext, ~40 bits of fractional precision: FedAvg needs one
# plaintext multiply (the weight) and additions, so one rescale level suffices.
POLY_MODULUS_DEGREE = 16384
COEFF_MOD_BIT_SIZES = (60, 40, 40, 60)
GLOBAL_SCALE = 2**40


def make_secret_context() -> Any:
    """Make a fresh CKKS context holding the secret key (for sites only)."""
    ts = tenseal()
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, POLY_MODULUS_DEGREE, -1, list(COEFF_MOD_BIT_SIZES))
    ctx.global_scale = GLOBAL_SCALE
    ctx.generate_galois_keys()
    return ctx


def public_bytes(ctx: Any) -> bytes:
    """Serialise ``ctx`` without its secret key (what the coordinator may hold)."""
    return ctx.serialize(save_secret_key=False)


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


def encrypt(ctx: Any, vector: np.ndarray) -> list[bytes]:
    """Encrypt a flat float vector as serialised CKKS vectors, one per ``slots`` chunk."""
    ts = tenseal()
    flat = np.asarray(vector, dtype=np.float64).ravel()
    slots = POLY_MODULUS_DEGREE // 2
    return [
        ts.ckks_vector(ctx, flat[i : i + slots].tolist()).serialize()
        for i in range(0, flat.size, slots)
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
