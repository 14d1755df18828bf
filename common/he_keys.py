"""Encrypted aggregation's keys: CKKS parameters, provisioning, file names, key ids.

Both sides need them: provisioning (``fedlife-sim run --he``, and the trusted
provisioning machine) makes the secret context that only sites hold and the public one
the coordinator holds; the coordinator checks that an update has as many ciphertexts
as the model needs; both name a key by the same fingerprint of its public context.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from common.atomic_files import write_atomically
from common.errors import RunDirError
from common.tenseal_module import tenseal

# 4096 slots per ciphertext (the demo model and the digits CNN each fit one), ~40 bits
# of fractional precision: FedAvg needs one plaintext multiply (the weight) and
# additions, so one rescale level suffices; 160 bits of modulus stay under the 218
# that 128-bit security allows at this degree. 16384 with (60, 40, 40, 60) costs 3x the
# time and bytes for nothing FedAvg uses (docs/privacy/he.md).
POLY_MODULUS_DEGREE = 8192
COEFF_MOD_BIT_SIZES = (60, 40, 60)
GLOBAL_SCALE = 2**40
SLOTS = POLY_MODULUS_DEGREE // 2

# Beside a site's site.toml: the federation's secret context (sites only).
SECRET_CONTEXT_FILE = "he-secret.context"
# In the coordinator's run directory: the public context (no secret key).
PUBLIC_CONTEXT_FILE = "he-public.context"


def chunk_count(num_values: int) -> int:
    """Ciphertexts an encrypted vector of ``num_values`` floats takes."""
    return max(1, math.ceil(num_values / SLOTS))


def key_id(ctx: Any) -> str:
    """A short fingerprint of a context's public key and parameters: sites and the
    coordinator compare it to find a site whose key is not the federation's.

    Only the public key is hashed: a context's full public serialisation differs after
    a reload (its relinearisation keys do not serialise to the same bytes)."""
    data = ctx.serialize(
        save_public_key=True, save_secret_key=False, save_galois_keys=False, save_relin_keys=False
    )
    return hashlib.sha256(data).hexdigest()[:16]


def parameters(ctx: Any) -> str:
    """A context's encryption parameters as one short text (degree and modulus bits):
    a site compares its own with the coordinator's to name a mismatch as such."""
    data = ctx.seal_context().data.key_context_data()
    degree, bits = data.parms().poly_modulus_degree(), data.total_coeff_modulus_bit_count()
    return f"CKKS degree {degree}, {bits}-bit modulus"


def make_secret_context() -> Any:
    """Make a fresh CKKS context holding the secret key (for sites only)."""
    ts = tenseal()
    ctx = ts.context(ts.SCHEME_TYPE.CKKS, POLY_MODULUS_DEGREE, -1, list(COEFF_MOD_BIT_SIZES))
    ctx.global_scale = GLOBAL_SCALE
    # No Galois keys: a weighted sum never rotates, and they would make the public
    # context 75 MB instead of 3.7 MB.
    return ctx


def public_bytes(ctx: Any) -> bytes:
    """Serialise ``ctx`` without its secret key (what the coordinator may hold)."""
    return bytes(ctx.serialize(save_secret_key=False))


def provision(site_folders: Iterable[Path], coordinator_folder: Path) -> str:
    """One federation key: its secret context into every site folder (readable by its
    owner only), the public one into ``coordinator_folder``; returns the key id."""
    ctx = make_secret_context()
    secret = bytes(ctx.serialize(save_secret_key=True))
    public = public_bytes(ctx)
    for folder in site_folders:
        Path(folder).mkdir(parents=True, exist_ok=True)
        write_atomically(Path(folder) / SECRET_CONTEXT_FILE, secret, private=True)
    Path(coordinator_folder).mkdir(parents=True, exist_ok=True)
    (Path(coordinator_folder) / PUBLIC_CONTEXT_FILE).write_bytes(public)
    return key_id(ctx)


def read_chunks(path: Path) -> list[bytes]:
    """The ciphertexts of an encrypted model file (``round-NNN.he``, ``model.he``): a
    length-prefixed sequence, as the coordinator writes them."""
    try:
        data, chunks, at = path.read_bytes(), [], 0
    except OSError as error:
        raise RunDirError(f"{path}: encrypted model unreadable ({error.strerror})") from None
    while at < len(data):
        size = int.from_bytes(data[at : at + 8], "big")
        chunks.append(data[at + 8 : at + 8 + size])
        at += 8 + size
    if at != len(data) or not chunks:
        raise RunDirError(f"{path}: encrypted checkpoint is truncated")
    return chunks
