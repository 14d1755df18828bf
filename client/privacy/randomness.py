"""The secret behind a site's DP noise and Poisson sampling.

DP-SGD protects a row only while its noise is unknown to whoever reads the update.
A seed the coordinator knows (the run seed, the round, the site's name) lets it
regenerate the noise and subtract it, so every draw behind DP comes from here:

* the **site secret**, 32 bytes drawn from the OS when the site is created and kept
  in ``<store>/keys/dp-secret`` (mode 0600). It never leaves the site.
* a **fresh draw** from the OS for every release, mixed in with HMAC-SHA256, so that
  two releases never share noise, not even on identical data in two runs with the
  same seed (the difference of two such releases would otherwise be noise-free).

A research simulation may opt out of the fresh draw (``[privacy] reproducible_noise``,
set by ``fedlife-sim run --reproducible``) and derive the secret from its seed: its
runs then repeat bit for bit, and its summary says ``"noise_secret": false``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from common.audit import load_or_create_key
from common.errors import StoreError

if TYPE_CHECKING:  # torch takes a second to import; init and prepare never need it
    import torch

SECRET_FILE = Path("keys") / "dp-secret"
SECRET_BYTES = 32


def secret_path(store_dir: Path) -> Path:
    return Path(store_dir) / SECRET_FILE


def site_secret(store_dir: Path, *, derive_from: str | None = None) -> bytes:
    """The site secret, created if it is missing (an existing one is kept).

    ``derive_from`` makes a new secret a public function of that text (reproducible
    simulations only); otherwise it comes from the OS. Its folder is owner-only.
    """
    path = secret_path(store_dir)
    derived = None
    if derive_from is not None:
        derived = hashlib.sha256(f"fedlife-dp-secret:{derive_from}".encode()).digest()
    secret = load_or_create_key(path, content=derived)
    os.chmod(path.parent, 0o700)
    return secret


@dataclass(frozen=True)
class NoiseSource:
    """Generators for one site's DP randomness.

    Parameters
    ----------
    secret : the site secret.
    fresh : mix a new OS draw into every generator (False only for reproducible
        research runs).
    """

    secret: bytes
    fresh: bool = True

    def __post_init__(self) -> None:
        if len(self.secret) < SECRET_BYTES:
            raise StoreError(f"a DP secret needs {SECRET_BYTES} bytes, got {len(self.secret)}")

    @classmethod
    def of_store(cls, store_dir: Path, *, reproducible: bool = False) -> NoiseSource:
        """The site's source; a store created before secrets existed gets one now."""
        secret = site_secret(store_dir)
        if len(secret) != SECRET_BYTES:
            path = secret_path(store_dir)
            raise StoreError(f"{path}: DP secret is damaged ({len(secret)} bytes)")
        return cls(secret, fresh=not reproducible)

    def digest(self, *purpose: object) -> bytes:
        """32 bytes no one without the secret (and, if fresh, the draw) can predict."""
        fresh = os.urandom(SECRET_BYTES) if self.fresh else b""
        return hmac.new(self.secret, repr(purpose).encode() + fresh, hashlib.sha256).digest()

    def torch_generator(self, *purpose: object) -> torch.Generator:
        """For Opacus's noise and Poisson sampling (torch seeds take 64 bits)."""
        import torch

        seed = int.from_bytes(self.digest(*purpose)[:8], "big")
        return torch.Generator().manual_seed(seed)

    def numpy_generator(self, *purpose: object) -> np.random.Generator:
        """For DP releases computed with numpy (the full 256 bits seed it)."""
        return np.random.default_rng(int.from_bytes(self.digest(*purpose), "big"))
