"""Serving the ``production`` alias: the model follows promotions and rollbacks.

A coordinator's state folder (the one ``fedlife-coord retrain``/``models promote``
write ``aliases.json`` into) names the model deployments serve. Given that folder,
``serve`` loads the production model and, before each request, looks at the alias
file: after a promotion or a rollback the next request is answered by the new model,
without a restart. The check is one ``stat`` per request.
"""

from __future__ import annotations

import threading
from pathlib import Path

from common.errors import RunDirError
from server.lifecycle.promotion import ALIASES, Aliases
from server.serving.model import ServedModel, load_served_model


def is_state_folder(path: str | Path) -> bool:
    """Whether ``path`` is a coordinator state folder with model aliases."""
    return (Path(path) / ALIASES).is_file()


def load_production(state: str | Path) -> ServedModel:
    """The model the ``production`` alias of ``state`` names."""
    production = Aliases(state).get("production")
    if not production:
        raise RunDirError(f"{state}: no production model (promote one first)")
    return load_served_model(production["run_dir"], server_round=production.get("round"))


class ProductionModel:
    """The production model of a state folder, reloaded when the alias moves.

    Parameters
    ----------
    state : the coordinator's state folder holding ``aliases.json``.
    """

    def __init__(self, state: str | Path) -> None:
        self.aliases = Path(state) / ALIASES
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self._model = load_production(state)

    def current(self) -> ServedModel:
        """The model to answer with now (a promotion since the last call swaps it)."""
        stamp = self._stamp()
        if stamp != self._seen:
            with self._lock:
                if stamp != self._seen:
                    # A half-written or broken alias file keeps the model being served.
                    try:
                        self._model = load_production(self.aliases.parent)
                    except RunDirError:
                        return self._model
                    self._seen = stamp
        return self._model

    def _stamp(self) -> tuple[int, int]:
        stat = self.aliases.stat()
        return stat.st_mtime_ns, stat.st_size


def open_model(
    path: str | Path, *, server_round: int | None = None
) -> ServedModel | ProductionModel:
    """A run directory's or export's model, or the followed production alias of a state folder.

    Parameters
    ----------
    path : a run directory, an exported model folder, or a coordinator state folder.
    server_round : the run directory's round (default: the last); not for a state folder,
        whose alias names its round.
    """
    if not is_state_folder(path):
        return load_served_model(path, server_round=server_round)
    if server_round is not None:
        raise RunDirError(f"{path}: the production alias names its round; drop --round")
    return ProductionModel(path)
