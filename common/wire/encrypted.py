"""The record that carries a model as CKKS ciphertexts (encrypted aggregation).

A site's update under ``he`` (:class:`~common.wire.messages.EncryptedTrainReply`) carries
it instead of arrays; the coordinator validates it against ``context``: ``key_id`` (the
federation's key), ``chunks`` (how many ciphertexts the model takes) and
``load_ciphertext`` (raises ValueError for a ciphertext its public context cannot load).
"""

from __future__ import annotations

from pydantic import ValidationInfo, model_validator

from common import keys
from common.wire.base import RecordModel
from common.wire.privacy import Privacy as P
from common.wire.privacy import wire_field as f

# Ciphertexts of one encrypted update, and the bytes of one (a CKKS vector at the
# parameters of common.he_keys serialises to about 235 kB).
MAX_CHUNKS = 4096
MAX_CHUNK_BYTES = 8_000_000


class EncryptedRecord(RecordModel):
    chunks: list[bytes] = f(
        P.DP,
        "CKKS ciphertexts of the model after DP-SGD (its noise in the ledger), under the "
        "sites' key: the coordinator holds only the public context",
        alias=keys.CHUNKS,
        min_length=1,
        max_length=MAX_CHUNKS,
    )
    key_id: str = f(
        P.PUBLIC,
        "fingerprint of the public context the site encrypted under",
        alias=keys.HE_KEY_ID,
        max_length=64,
    )

    @model_validator(mode="after")
    def _fits(self, info: ValidationInfo) -> EncryptedRecord:
        context = info.context or {}
        wanted_key, count = context.get("key_id"), context.get("chunks")
        if wanted_key is not None and self.key_id != wanted_key:
            raise ValueError(
                f"encrypted under HE key {self.key_id}, not the federation's {wanted_key} "
                "(a context with other keys or parameters)"
            )
        if count is not None and len(self.chunks) != count:
            raise ValueError(f"{len(self.chunks)} ciphertexts, the model needs {count}")
        if any(len(c) > MAX_CHUNK_BYTES for c in self.chunks):
            raise ValueError(f"a ciphertext is over {MAX_CHUNK_BYTES} bytes")
        check = context.get("load_ciphertext")
        if check is not None:
            for chunk in self.chunks:
                check(chunk)  # raises ValueError for a tampered or foreign ciphertext
        return self
