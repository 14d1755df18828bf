"""Only the provisioned sites take part: a Grid that hides every other node.

Flower 1.42's Control API lets anyone who reaches the SuperLink's port register a
node key (``flwr supernode register`` needs no account in the open-source build).
Such a node can connect, but the ServerApp never samples it: every strategy and the
profile round pick their nodes from ``grid.get_node_ids()``, which this wrapper
limits to the node IDs the coordinator registered for its provisioned sites.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flwr.app import Message
from flwr.serverapp import Grid

from common.errors import FederationError


class AllowedNodesGrid:
    """``grid`` with only ``allowed`` nodes visible, and messages to others refused.

    Parameters
    ----------
    grid : Flower's Grid of this run.
    allowed : the node IDs that may take part.
    """

    def __init__(self, grid: Grid, allowed: Iterable[int]) -> None:
        self._grid = grid
        self.allowed = frozenset(allowed)

    def get_node_ids(self) -> list[int]:
        return [n for n in self._grid.get_node_ids() if n in self.allowed]

    def send_and_receive(self, messages: Iterable[Message], **kwargs: Any) -> Iterable[Message]:
        return self._grid.send_and_receive(self._checked(messages), **kwargs)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        return self._grid.push_messages(self._checked(messages))

    def _checked(self, messages: Iterable[Message]) -> list[Message]:
        messages = list(messages)
        for message in messages:
            if message.metadata.dst_node_id not in self.allowed:
                raise FederationError(
                    f"node {message.metadata.dst_node_id} is not a provisioned site"
                )
        return messages

    def __getattr__(self, name: str) -> Any:
        return getattr(self._grid, name)


def parse_node_ids(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (an empty string allows every node)."""
    return [int(part) for part in text.split(",") if part.strip()]
