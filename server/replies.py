"""Reading the sites' replies through their wire contracts (``common.wire.messages``).

A reply is one of three things: a Flower error (a failure), a site's refusal (an
:class:`~common.wire.messages.Exclusion`), or an answer. An answer or a refusal that
does not validate against its contract excludes its site for the round, with the
validation error as the reason: one malformed site never stops a run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from flwr.app import ArrayRecord, Message

from common import keys
from common.errors import WireError
from common.wire.base import WireMessage
from common.wire.messages import MAX_NAME, Exclusion
from server.round_report import RoundReport
from server.site_heads import SiteHeads


@dataclass(frozen=True)
class Reply:
    """One reply, sorted: ``answer`` (validated), ``excluded`` or ``failure``."""

    message: Message
    site: str
    answer: WireMessage | None = None
    excluded: dict[str, str] | None = None
    failure: str = ""


def site_label(reply: Message) -> str:
    """The site's name as it sent it, or its node when the reply names none readable."""
    if not reply.has_error():
        record = reply.content.config_records.get(keys.SITE)
        name = record.get(keys.SITE_NAME) if record is not None else None
        if isinstance(name, str) and 0 < len(name) <= MAX_NAME:
            return name
    return f"node {reply.metadata.src_node_id}"


_CLIENTAPP_PREFIX = "ClientAppException occurred. Message: "


def one_line_reason(text: str) -> str:
    """What a worker's error report says went wrong, in one line (its last one).

    A ClientApp that raised is reported with the worker's traceback (Ray's task error
    inside Flower's ``<class ...>:<'...'>``); the last line says what it raised, and
    ``ClientAppException``'s prefix (``... occurred. Message:``) is left out.
    """
    lines = [line.strip() for line in text.strip().splitlines() if line.strip().strip("'>")]
    if not lines:
        return text.strip()
    last = lines[-1] if len(lines) > 1 else lines[0]
    if len(lines) > 1:  # the end of Flower's <class ...>:<'...'> wrapping
        last = last.strip("'>").strip()
    return last.partition(_CLIENTAPP_PREFIX)[2] or last


def read(
    reply: Message,
    contract: type[WireMessage],
    context: dict[str, Any] | None = None,
    *,
    heads: SiteHeads | None = None,
) -> Reply:
    """Sort ``reply``: validate it against ``contract`` (or, if it refuses, Exclusion).

    With ``heads``, an answer whose site's audit log went backwards is excluded too.
    """
    site = site_label(reply)
    if reply.has_error():
        return Reply(reply, site, failure=f"{site}: {one_line_reason(reply.error.reason or '')}")
    expected = Exclusion if keys.EXCLUDED in reply.content else contract
    try:
        answer = expected.read(reply.content, context)
    except WireError as error:
        return Reply(reply, site, excluded={"site": site, "reason": f"invalid reply: {error}"})
    if isinstance(answer, Exclusion):
        return Reply(reply, site, excluded={"site": site, "reason": answer.excluded.reason})
    record = getattr(answer, "site", None)
    if heads is not None and record is not None:
        store_id, head = getattr(record, "store_id", None), getattr(record, "audit_head", None)
        refused = heads.check(site, store_id, head)
        if refused:
            return Reply(reply, site, excluded={"site": site, "reason": refused})
    return Reply(reply, site, answer=answer)


def shapes(arrays: ArrayRecord) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the global model's arrays: an update must have the same."""
    return {name: tuple(array.shape) for name, array in arrays.items()}


def sorted_replies(
    replies: list[Message],
    contract,
    context,
    report: RoundReport,
    *,
    heads: SiteHeads | None = None,
) -> list[Reply]:
    """The valid replies in site order; failures and exclusions go to ``report``."""
    valid = []
    read_all = (read(r, contract, context, heads=heads) for r in replies)
    for reply in sorted(read_all, key=_reply_order):
        if reply.failure:
            report.failures.append(reply.failure)
        elif reply.excluded is not None:
            report.excluded.append(reply.excluded)
        else:
            valid.append(reply)
    return valid


def _reply_order(reply: Reply) -> tuple[str, int]:
    return ("" if reply.failure else reply.site), reply.message.metadata.src_node_id


def participant(reply: Message) -> dict[str, Any]:
    """What the round's lineage records of a site's validated train reply."""
    # The reply was validated: these records hold the scalars its contract declares.
    site = cast(Mapping[str, Any], reply.content[keys.SITE])
    metrics = cast(Mapping[str, Any], reply.content[keys.METRICS])
    return {
        "site": str(site[keys.SITE_NAME]),
        "table_version": int(site[keys.TABLE_VERSION]),
        "labeled_version": int(site.get(keys.LABELED_VERSION, -1)),
        "epsilon": float(metrics[keys.EPSILON]),
        "epsilon_budget": float(site[keys.EPSILON_BUDGET]),
        "num_examples": int(metrics[keys.NUM_EXAMPLES]),
        "train_loss": float(metrics["train-loss"]),
        "purged_versions": purged_versions(reply),
    }


def purged_versions(reply: Message) -> list[int]:
    """Clean-table versions the site reports purged by erasure (older sites: none)."""
    text = str(reply.content[keys.SITE].get(keys.PURGED_VERSIONS, "[]"))
    return [int(v) for v in json.loads(text)]
