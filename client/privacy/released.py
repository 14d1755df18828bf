"""Updates a site has already released, so a replayed round costs no privacy.

When a coordinator resumes a run, it may ask again for a round whose update the site
already computed and sent (and paid for in its ledger) before the coordinator went
down. Training again would release a second noisy update and spend budget twice.
Instead the site sends back the very update it released, which reveals nothing new.
Only an identical request (same run, round and incoming global model) is replayed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# torch is imported where a kept update is read or written: the site's CLI imports this
# module (retention drops the updates trained on erased rows) for commands that never
# touch a model, and torch takes seconds to import.


@dataclass(frozen=True)
class ReleasedUpdate:
    state_dict: dict[str, torch.Tensor]
    loss: float
    num_examples: int
    table_version: int


def request_digest(global_state: dict[str, torch.Tensor], run_id: str, server_round: int) -> str:
    """What identifies a training request: the run, the round and the incoming model."""
    digest = hashlib.sha256(f"{run_id}:{server_round}".encode())
    for name in sorted(global_state):
        digest.update(name.encode())
        digest.update(global_state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class ReleasedUpdates:
    """The latest released update of each run, under ``<store>/privacy/released``.

    Parameters
    ----------
    store_dir : the site's store directory.
    """

    def __init__(self, store_dir: Path) -> None:
        self.dir = Path(store_dir) / "privacy" / "released"

    def find(self, run_id: str, digest: str) -> ReleasedUpdate | None:
        path = self._path(run_id)
        if not path.exists():
            return None
        import torch

        try:
            kept = torch.load(path, weights_only=True)
        except Exception:  # noqa: BLE001 - whatever is wrong with it, it is not a cache hit
            return None  # training again (and paying) is the safe answer
        if kept.get("digest") != digest:
            return None
        return ReleasedUpdate(
            kept["state_dict"],
            float(kept["loss"]),
            int(kept["num_examples"]),
            int(kept["table_version"]),
        )

    def keep(self, run_id: str, digest: str, update: ReleasedUpdate) -> None:
        """Remember ``update`` (atomically) as this run's latest release."""
        import torch

        self.dir.mkdir(parents=True, exist_ok=True)
        target = self._path(run_id)
        temporary = target.with_suffix(".tmp")
        torch.save(
            {
                "digest": digest,
                "state_dict": update.state_dict,
                "loss": update.loss,
                "num_examples": update.num_examples,
                "table_version": update.table_version,
            },
            temporary,
        )
        os.replace(temporary, target)

    def drop_trained_on(self, table_versions: list[int]) -> int:
        """Delete the kept updates computed from ``table_versions``; return how many.

        An update trained on rows that were since erased must not be sent again.
        """
        import torch

        dropped = 0
        for path in self.dir.glob("*.pt") if table_versions else []:
            try:
                version = int(torch.load(path, weights_only=True)["table_version"])
            except Exception:  # noqa: BLE001 - unreadable: it cannot be trusted either
                version = table_versions[0]
            if version in table_versions:
                path.unlink(missing_ok=True)
                dropped += 1
        return dropped

    def _path(self, run_id: str) -> Path:
        return self.dir / f"{run_id}.pt"
