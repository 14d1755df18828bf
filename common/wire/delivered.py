"""A message as a SuperNode hands it to the ClientApp, for code that runs an app in-process.

Benchmarks and tests call the ClientApp's functions, or feed the ServerApp replies,
without a SuperLink; Flower fills a message's metadata in a real run, so they build
it here, one way.
"""

from __future__ import annotations

from flwr.app import Message, Metadata, RecordDict

COORDINATOR = 0  # Flower's node id of the ServerApp's side


def delivered(content: RecordDict, *, message_type: str, node: int = 1) -> Message:
    """``content`` sent by the coordinator to ``node`` as a ``message_type`` message.

    A site's answer to it is ``Message(reply_content, reply_to=delivered(...))``.

    Parameters
    ----------
    content : the records the message carries.
    message_type : Flower's message type, which selects the ClientApp function.
    node : the receiving node's id.
    """
    metadata = Metadata(
        run_id=1,
        message_id=f"{message_type}-{node}",
        src_node_id=COORDINATOR,
        dst_node_id=node,
        reply_to_message_id="",
        group_id="1",
        created_at=0.0,
        ttl=3600.0,
        message_type=message_type,
    )
    return Message(content=content, metadata=metadata)  # type: ignore[call-overload]  # as a SuperNode builds it
