"""Rounds under encrypted aggregation: what the round loop does differently with ``he``.

The coordinator holds the public CKKS context only (``he-public.context`` in the run
directory). Round 1 sends the initial model in the clear (it comes from the public
seed); from then on every train and evaluate message carries the encrypted global
model instead, each site answers its update as ciphertexts
(:class:`~common.wire.messages.EncryptedTrainReply`), and the coordinator forms their
weighted sum without reading it. Checkpoints and the final model are ciphertexts too;
there is no central evaluation. After the last round the sites whose policy agrees
decrypt the final model for the coordinator's registry (``finish``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from flwr.app import ArrayRecord, ConfigRecord, Message

from common import keys
from common.errors import EncryptionError, RunDirError
from common.he_keys import PUBLIC_CONTEXT_FILE, chunk_count, key_id, parameters, read_chunks
from common.tenseal_module import tenseal
from common.wire.messages import DecryptedModelReply, EncryptedTrainReply
from server.he_aggregation import load_public_context, weighted_sum
from server.metrics import weighted_mean_ignoring_nan
from server.replies import shapes
from server.run_dir import RunDirectory
from server.site_exchange import SiteExchange

EVALUATION = (
    "federated evaluation only (encrypted aggregation: the coordinator cannot read the model)"
)
FINAL_MODEL = "model.he"
# Two sites' decryptions of one ciphertext differ by CKKS noise only (about 1e-7 here);
# a larger gap means one of them returned another model.
DECRYPTION_TOLERANCE = 1e-3


class EncryptedRounds:
    """The coordinator's side of encrypted rounds, for one run directory.

    Parameters
    ----------
    run_dir : the run's directory; its ``he-public.context`` is the context used.
    template : the global model's arrays (shapes only: how many ciphertexts it takes).
    resume_after : a resumed run's last completed round, whose encrypted checkpoint
        becomes the global model (0 = a fresh run).
    """

    def __init__(self, run_dir: RunDirectory, template: ArrayRecord, resume_after: int = 0) -> None:
        path = run_dir.path / PUBLIC_CONTEXT_FILE
        if not path.is_file():
            raise EncryptionError(
                f"encrypted aggregation is on but {path} is missing: the coordinator needs "
                "the federation's public HE context (fedlife-sim run --he puts it there, and "
                "so does fedlife-coord run with he = true after fedlife-coord provision --he)"
            )
        data = path.read_bytes()
        self.context = load_public_context(data)
        self.key_id = key_id(self.context)
        self.parameters = parameters(self.context)
        self.chunks = chunk_count(sum(a.numpy().size for a in template.values()))
        self.run_dir = run_dir
        # Encrypted global model (None: round 1's model is still the public initial one).
        self.model: list[bytes] | None = None
        self.last_round = resume_after  # the round the encrypted model is the result of
        if resume_after:
            self.model = read_chunks(checkpoint_path(run_dir, resume_after))

    def round_config(self, config: ConfigRecord) -> ConfigRecord:
        """``config`` with the flag, key id and parameters every site checks its own against."""
        config[keys.HE] = True
        config[keys.HE_KEY_ID] = self.key_id
        config[keys.HE_PARAMS] = self.parameters
        return config

    def arrays(self, plain: ArrayRecord) -> ArrayRecord:
        """What a message's arrays record carries: the public initial model, or nothing
        once the global model exists only as ciphertexts."""
        return plain if self.model is None else ArrayRecord()

    def attach(self, messages: Iterable[Message]) -> list[Message]:
        """Add the encrypted global model to each outgoing train or evaluate message."""
        out = list(messages)
        if self.model is not None:
            for message in out:
                message.content[keys.ENCRYPTED] = ConfigRecord(
                    {keys.CHUNKS: list(self.model), keys.HE_KEY_ID: self.key_id}
                )
        return out

    def contract(self) -> tuple[type[EncryptedTrainReply], dict[str, Any]]:
        """The contract a site's train reply must meet, and what it is validated against."""
        context = {"key_id": self.key_id, "chunks": self.chunks, "load_ciphertext": self._loads}
        return EncryptedTrainReply, context

    def _loads(self, chunk: bytes) -> None:
        try:
            tenseal().ckks_vector_from(self.context, chunk)
        except Exception as err:  # noqa: BLE001 - TenSEAL raises plain exceptions
            raise ValueError(
                f"tampered or foreign ciphertext, it does not load ({type(err).__name__})"
            ) from None

    def aggregate(self, updates: list[Message]) -> dict[str, Any]:
        """Weighted sum of the updates' ciphertexts (weights: the reported counts); the
        result becomes the global model; returns the weighted train metrics."""
        pairs = []
        for update in updates:
            record = cast(Mapping[str, Any], update.content[keys.ENCRYPTED])
            metrics = cast(Mapping[str, Any], update.content[keys.METRICS])
            pairs.append((list(record[keys.CHUNKS]), float(metrics[keys.NUM_EXAMPLES])))
        if sum(weight for _, weight in pairs) <= 0:  # every site coarsened its count to 0
            pairs = [(chunks, 1.0) for chunks, _ in pairs]
        self.model = weighted_sum(self.context, pairs)
        return dict(weighted_mean_ignoring_nan([u.content for u in updates], keys.NUM_EXAMPLES))

    def save(self, path: Path) -> Path:
        """Write the encrypted global model atomically (one serialised chunk per line
        would not do: chunks are binary), as a length-prefixed sequence."""
        if self.model is None:
            raise RunDirError("no encrypted model to save yet")
        temporary = path.with_suffix(".tmp")
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("wb") as handle:
            for chunk in self.model:
                handle.write(len(chunk).to_bytes(8, "big"))
                handle.write(chunk)
        os.replace(temporary, path)
        return path

    def checkpoint(self, server_round: int) -> Path:
        self.last_round = server_round
        return self.save(checkpoint_path(self.run_dir, server_round))

    def save_final(self) -> None:
        """The final model stays encrypted (``model.he``): only a site can read it."""
        if self.model is not None:
            self.save(self.run_dir.path / FINAL_MODEL)

    def finish(
        self, sites: SiteExchange, config: ConfigRecord, template: ArrayRecord, *, ask: bool
    ) -> dict[str, Any]:
        """Save the final model encrypted; once the run completed (``ask``), ask the sites
        to decrypt it for the registry. The plaintext that the consenting sites return
        (all alike, within CKKS precision) becomes ``model.pt`` and the last round's
        checkpoint; run.json records who decrypted it, or why it stays encrypted.
        Returns the final state dict ({} while it stays encrypted).
        """
        self.save_final()
        if not ask or self.model is None:
            return {}
        query = {
            **dict(config),
            keys.RELEASE: keys.DECRYPT_FINAL,
            keys.SERVER_ROUND: self.last_round,
            keys.CHUNKS: list(self.model),
        }
        replies, refused = sites.query(query, DecryptedModelReply, {"shapes": shapes(template)})
        states = {
            str(r.content[keys.SITE][keys.SITE_NAME]): r.content.array_records[
                keys.ARRAYS
            ].to_torch_state_dict()
            for r in replies
        }
        names = sorted(states)
        first = states[names[0]] if names else {}
        apart = [n for n in names if _distance(states[n], first) > DECRYPTION_TOLERANCE]
        if not names or apart:
            why = f"{apart[0]} decrypted another model" if apart else "no site agreed"
            self.run_dir.update_info(final_model=f"encrypted ({why})", decrypt_refused=refused)
            return {}
        self.run_dir.save_checkpoint(self.last_round, first, {})
        self.run_dir.save_final_model(first)
        self.run_dir.update_info(
            final_model="decrypted", decrypted_by=names, decrypt_refused=refused
        )
        return first


def _distance(a: dict[str, Any], b: dict[str, Any]) -> float:
    """The largest absolute difference between two state dicts of the same shapes."""
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in b) if b else 0.0


def checkpoint_path(run_dir: RunDirectory, server_round: int) -> Path:
    """Where the encrypted global model after ``server_round`` is kept."""
    return run_dir.path / "models" / f"round-{server_round:03d}.he"
