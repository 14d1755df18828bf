"""The site's egress log: a Flower mod that records every message the ClientApp sends.

A site operator who wants to see what leaves the site sets the node config key
``egress-log`` (``fedlife-site join --egress-log DIR``); every reply is then described
in ``DIR/egress.jsonl`` before Flower sends it: the message type, and per record its
kind with the metric and config values in full and, for arrays, their names, shapes
and dtypes (the weights themselves are model parameters, not rows).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord
from flwr.clientapp.typing import ClientAppCallable

from common import keys

LOG_NAME = "egress.jsonl"


def record_egress(message: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Answer ``message``, then append what the reply carries to the egress log."""
    reply = call_next(message, context)
    folder = context.node_config.get(keys.EGRESS_LOG)
    if folder:
        line = {
            "message_type": message.metadata.message_type,
            "run_id": message.metadata.run_id,
            "error": reply.error.reason if reply.has_error() else None,
            "records": {} if reply.has_error() else describe(reply),
        }
        path = Path(str(folder))
        path.mkdir(parents=True, exist_ok=True)
        # One write per line with O_APPEND: concurrent ClientApp processes never interleave.
        data = (json.dumps(line, default=str) + "\n").encode()
        descriptor = os.open(path / LOG_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(descriptor, data)
        finally:
            os.close(descriptor)
    return reply


def describe(reply: Message) -> dict[str, dict[str, Any]]:
    """Every record of ``reply`` by name: its kind and contents (array shapes only)."""
    described: dict[str, dict[str, Any]] = {}
    for name, record in reply.content.items():
        if isinstance(record, ArrayRecord):
            arrays = {key: {"shape": list(a.shape), "dtype": a.dtype} for key, a in record.items()}
            described[name] = {"kind": "arrays", "arrays": arrays}
        elif isinstance(record, MetricRecord):
            described[name] = {"kind": "metrics", "values": dict(record)}
        elif isinstance(record, ConfigRecord):
            described[name] = {"kind": "config", "values": _sized(dict(record))}
        else:  # a record type this log does not know is reported, never skipped
            described[name] = {"kind": type(record).__name__}
    return described


def _sized(values: dict[str, Any]) -> dict[str, Any]:
    """Binary values (an encrypted update's ciphertexts) by size, not as text dumps."""

    def size(value: Any) -> Any:
        if isinstance(value, bytes):
            return f"<{len(value)} bytes>"
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return [size(v) for v in value]
        return value

    return {key: size(value) for key, value in values.items()}
