"""Attacks for robustness experiments: Flower client mods that misbehave on purpose.

A mod wraps a ClientApp's train function (``@app.train(mods=[...])``); it sees the
site's honest reply and may tamper with it before it leaves, like a compromised site.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

from flwr.app import Array, ArrayRecord, Context, Message, MetricRecord
from flwr.clientapp.typing import ClientAppCallable

from common import keys


class ScaleUpdates:
    """Model poisoning: the named sites multiply every array of their update by ``factor``.

    The site a reply comes from is read from the reply itself (its ``site`` record's
    name), so one ClientApp serves honest and poisoned virtual sites alike. Refusals
    and errors pass through untouched.

    Parameters
    ----------
    sites : names of the poisoned sites (``site-NNN`` in a simulation).
    factor : what every weight of their update is multiplied by.
    """

    def __init__(self, sites: Iterable[str], factor: float) -> None:
        self.sites = frozenset(sites)
        self.factor = float(factor)

    def __call__(self, msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, ctxt)
        if reply.has_error() or keys.ARRAYS not in reply.content:
            return reply
        site = reply.content.get(keys.SITE)
        if site is None or str(site.get(keys.SITE_NAME, "")) not in self.sites:
            return reply
        arrays = cast(ArrayRecord, reply.content[keys.ARRAYS])
        reply.content[keys.ARRAYS] = ArrayRecord(
            {
                name: Array((array.numpy() * self.factor).astype(array.numpy().dtype))
                for name, array in arrays.items()
            }
        )
        return reply


class CorruptReplies:
    """A broken or hostile site: the named sites send NaN as their epsilon.

    The coordinator reads every reply through its wire contract
    (``common.wire.messages.TrainReply``): such a reply excludes its site for the round
    with the validation error as the reason, and the round goes on without it.

    Parameters
    ----------
    sites : names of the corrupting sites (``site-NNN`` in a simulation).
    """

    def __init__(self, sites: Iterable[str]) -> None:
        self.sites = frozenset(sites)

    def __call__(self, msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
        reply = call_next(msg, ctxt)
        if reply.has_error() or keys.METRICS not in reply.content:
            return reply
        site = reply.content.get(keys.SITE)
        if site is None or str(site.get(keys.SITE_NAME, "")) not in self.sites:
            return reply
        cast(MetricRecord, reply.content[keys.METRICS])[keys.EPSILON] = float("nan")
        return reply
