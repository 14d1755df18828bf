"""Flower mods a site's ClientApp always carries."""

from __future__ import annotations

from flwr.app import Array, ArrayRecord, Context, Message
from flwr.clientapp.typing import ClientAppCallable
from flwr.supercore.differential_privacy import KEY_CLIPPING_NORM, compute_clip_model_update


def clip_update_when_asked(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    """Clip the model update to the norm a client-side central-DP wrapper sends.

    Flower's ``fixedclipping_mod`` does the same but turns every reply without
    arrays (a site refusing for budget or gate) into an error, and fails every
    round that asks for no clipping; this mod leaves those replies alone and clips
    with Flower's own ``compute_clip_model_update``.
    """
    reply = call_next(msg, ctxt)
    norms = [
        c[KEY_CLIPPING_NORM] for c in msg.content.config_records.values() if KEY_CLIPPING_NORM in c
    ]
    if not norms or reply.has_error() or len(reply.content.array_records) != 1:
        return reply
    (sent,) = msg.content.array_records.values()
    key, update = next(iter(reply.content.array_records.items()))
    arrays = update.to_numpy_ndarrays()
    compute_clip_model_update(arrays, sent.to_numpy_ndarrays(), float(norms[0]))  # type: ignore[arg-type]  # a float config value
    reply.content.array_records[key] = ArrayRecord(
        {name: Array(value) for name, value in zip(update.keys(), arrays)}
    )
    return reply
