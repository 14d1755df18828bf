"""Coordinator side of encrypted aggregation: weighted sum of CKKS ciphertexts (public context)."""

from __future__ import annotations

from typing import Any

from common.errors import EncryptionError
from common.tenseal_module import tenseal


def load_public_context(data: bytes) -> Any:
    """Load the coordinator's context, refusing one that holds a secret key."""
    ts = tenseal()
    try:
        ctx = ts.context_from(data)
    except Exception as err:
        raise EncryptionError(f"not a TenSEAL context: {type(err).__name__}") from None
    if ctx.has_secret_key():
        raise EncryptionError(
            "the coordinator's HE context holds a secret key; give it the public one"
        )
    return ctx


def weighted_sum(ctx: Any, updates: list[tuple[list[bytes], float]]) -> list[bytes]:
    """Return sum_i w_i * c_i / sum_i w_i over ``(chunks, weight)`` pairs, still encrypted.

    Args:
        ctx: the public CKKS context.
        updates: each site's serialised chunks and its weight (its example count, or 1).
    """
    ts = tenseal()
    if not updates:
        raise EncryptionError("no encrypted updates to aggregate")
    total = float(sum(w for _, w in updates))
    n_chunks = len(updates[0][0])
    if any(len(c) != n_chunks for c, _ in updates) or total <= 0:
        raise EncryptionError("encrypted updates differ in length or have no weight")
    out = []
    for k in range(n_chunks):
        terms = []
        for chunks, w in updates:
            try:
                terms.append(ts.ckks_vector_from(ctx, chunks[k]) * (w / total))
            except Exception as err:  # noqa: BLE001 - TenSEAL raises plain exceptions
                raise EncryptionError(
                    f"tampered or mismatched ciphertext: {type(err).__name__}"
                ) from None
        total_term = terms[0]
        for term in terms[1:]:
            total_term = total_term + term
        out.append(total_term.serialize())
    return out
