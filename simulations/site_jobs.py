"""Per-site jobs (prepare, retention, erasure) as Ray tasks, one per site.

Each task asks for one unit of a custom resource named after its site
(``{"site-007": 1}``). A node offers that resource only if it holds the site's
data, so Ray itself places the job there: on a cluster, start each node with
``ray start --resources='{"site-007": 1, ...}'`` for the sites on its disk; a
private single-node Ray (``simulations.ray_runtime.private_ray``) offers every
site's resource. One unit per site also means two jobs never touch one site's
store at the same time.

Wiring another job is one line, e.g. ``run_per_site(retain_site, site_tomls)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import ray

from common.errors import ConfigError, FedlifeError

SiteObserver = Callable[[str, dict[str, Any]], None]


def site_resources(sites: list[str]) -> dict[str, float]:
    """The custom resources a node holding all of ``sites`` offers: one unit of each."""
    return dict.fromkeys(sites, 1.0)


def check_cluster_offers(sites: list[str]) -> None:
    """Fail with one line when the connected cluster has no node for some site."""
    offered = ray.cluster_resources()
    missing = [s for s in sites if offered.get(s, 0) < 1]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        raise ConfigError(
            f"no Ray node offers the resource of site(s) {shown}: start the node that holds "
            f"a site's data with ray start --resources='{{\"{missing[0]}\": 1}}'"
        )


def run_per_site(
    job: Callable[..., Any],
    sites: Mapping[str, Any],
    *,
    on_done: SiteObserver | None = None,
    num_cpus: float = 1.0,
    **kwargs: Any,
) -> dict[str, dict[str, Any]]:
    """Run ``job(argument, **kwargs)`` for every site, each on its site's node.

    Parameters
    ----------
    job : a module-level function (Ray ships it by reference); it gets the site's
        argument and ``kwargs`` and returns something JSON-like.
    sites : site name -> the argument its job gets (e.g. the path of its site.toml).
    on_done : called with (site, outcome) as each job finishes (progress bars).
    num_cpus : CPUs each job holds while it runs.
    kwargs : passed to every job.

    Returns
    -------
    dict
        site -> ``{"node_id": ..., "result": ...}`` (or ``"error"``: a job that fails
        with a user-facing error is reported, not fatal: its site simply has no
        output, as a real site whose job failed), in the order of ``sites``.
    """
    if not sites:
        return {}
    pending = {
        _site_job.options(
            resources={site: 1.0}, num_cpus=num_cpus, name=f"{job.__name__}[{site}]"
        ).remote(job, argument, kwargs): site
        for site, argument in sites.items()
    }
    outcomes: dict[str, dict[str, Any]] = {}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        site = pending.pop(done[0])
        outcomes[site] = ray.get(done[0])
        if on_done is not None:
            on_done(site, outcomes[site])
    return {site: outcomes[site] for site in sites}


@ray.remote(max_retries=0)
def _site_job(job: Callable[..., Any], argument: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    node_id = ray.get_runtime_context().get_node_id()
    try:
        return {"node_id": node_id, "result": job(argument, **kwargs)}
    except FedlifeError as error:
        return {"node_id": node_id, "error": str(error)}
