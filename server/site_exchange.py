"""Talking to the connected sites over Flower's Grid: wait for them, query them, and
exchange messages within the run's ``round-timeout``."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from flwr.serverapp import Grid

from common import keys
from common.errors import FederationError
from common.run_config import RunConfig
from common.wire.base import WireMessage
from server.replies import read
from server.site_heads import SiteHeads

NODE_WAIT_S = 120.0
PULL_INTERVAL_S = 0.1


class SiteExchange:
    """The sites of one run, as the ServerApp reaches them.

    Parameters
    ----------
    grid : Flower's Grid to the connected sites.
    config : the run config (``round-timeout``, ``min-train-sites``).
    heads : the sites' audit heads the coordinator keeps (``server.site_heads``);
        None checks none.
    """

    def __init__(self, grid: Grid, config: RunConfig, *, heads: SiteHeads | None = None) -> None:
        self.grid = grid
        self.config = config
        self.heads = heads

    def query(
        self, config: dict, contract: type[WireMessage], context: dict | None = None
    ) -> tuple[list[Message], list[dict[str, str]]]:
        """Send a query to every connected site; split valid answers from refusals.

        An answer that does not validate against ``contract`` (``server.replies``) is a
        refusal whose reason is the validation error.
        """
        node_ids = self.wait_for_sites()
        record = RecordDict({keys.CONFIG: ConfigRecord(config)})
        messages = [
            Message(record, dst_node_id=n, message_type=MessageType.QUERY) for n in node_ids
        ]
        answers, excluded = [], []
        silent: list[str] = []
        for reply in map(
            lambda r: read(r, contract, context, heads=self.heads), self.exchange(messages, silent)
        ):
            if reply.failure:
                excluded.append({"site": reply.site, "reason": reply.failure})
            elif reply.excluded is not None:
                excluded.append(reply.excluded)
            else:
                answers.append(reply.message)
        excluded += [{"site": "unknown", "reason": reason} for reason in silent]
        return answers, excluded

    def exchange(self, messages: Iterable[Message], failures: list[str]) -> list[Message]:
        """Send ``messages``, gather the replies that come within ``round-timeout``.

        A site that stays silent (a crashed process Flower still believes online) is
        added to ``failures``; the exchange goes on with the replies it has.
        Replies are pulled every ``PULL_INTERVAL_S``: Flower's own
        ``send_and_receive`` waits 3 s between pulls on a deployed SuperLink, which
        adds 1.5 s on average to every exchange.
        """
        pending = set(self.grid.push_messages(list(messages)))
        deadline = time.monotonic() + (self.config.round_timeout or math.inf)
        replies: list[Message] = []
        while pending and time.monotonic() < deadline:
            pulled = list(self.grid.pull_messages(pending))
            replies += pulled
            pending -= {reply.metadata.reply_to_message_id for reply in pulled}
            if pending:
                time.sleep(PULL_INTERVAL_S)
        if pending:
            failures.append(
                f"{len(pending)} site(s) sent no reply in {self.config.round_timeout:g} s"
            )
        return replies

    def wait_for_sites(self, needed: int = 0, setting: str = "min-train-sites") -> list[int]:
        """The connected nodes, once there are ``needed`` (default: min-train-sites)."""
        needed = needed or self.config.min_train_sites
        deadline = time.monotonic() + NODE_WAIT_S
        while True:
            node_ids = list(self.grid.get_node_ids())
            if len(node_ids) >= needed:
                return node_ids
            if time.monotonic() > deadline:
                raise FederationError(
                    f"{len(node_ids)} site(s) connected after {NODE_WAIT_S:.0f} s, "
                    f"fewer than {setting}={needed}"
                )
            time.sleep(1)
