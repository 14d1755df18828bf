"""Which site a Flower node serves, and the seeds every process of it derives alike.

Kept apart from ``client.app`` so that code which only needs to find a node's site
(the simulation's annotator, for one) does not import torch and the ClientApp.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import FedlifeError

if TYPE_CHECKING:
    from flwr.app import Context


def site_config_path(context: Context, sites_dir: str | None = None) -> Path:
    """Where this node's site.toml lives (deployment or simulation).

    Parameters
    ----------
    context : the node's Flower context; a deployment names ``site-config`` in its
        node config, a simulation its ``partition-id``.
    sites_dir : the simulation's folder of virtual sites (default: the run config's
        ``sites-dir``).
    """
    if "site-config" in context.node_config:
        return Path(str(context.node_config["site-config"]))
    root = sites_dir or str(context.run_config.get("sites-dir", ""))
    if not root or "partition-id" not in context.node_config:
        raise FedlifeError("node config names no 'site-config' and run config no 'sites-dir'")
    return Path(root) / f"site-{int(context.node_config['partition-id']):03d}" / "site.toml"


def derive_seed(*parts: object) -> int:
    """A seed that is the same in every process (unlike ``hash`` of a str)."""
    return zlib.crc32(repr(parts).encode()) & 0x7FFFFFFF
