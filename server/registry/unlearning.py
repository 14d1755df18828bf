"""Models trained on erased data, and exact unlearning by replaying the run without it.

A site that carries out an erasure reports only *which versions* of its clean table
were purged (in every reply to the coordinator, and in what ``fedlife-site retain``
prints for its operator), never whose rows. A checkpoint is affected when any round
up to it aggregated an update a site trained on a purged version: the model carries
that round's update forward.

Exact unlearning by replay: :func:`fork_for_unlearning` copies the run up to the
last checkpoint before the purged versions were first used into a new run directory
(new run id, so no site replays a cached update, its lineage naming what it
unlearns); resuming that run (``fedlife-sim run --resume`` or ``flwr run`` with
``resume=true``) trains the remaining rounds on the sites' current data.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from common.errors import ConfigError, RunDirError
from server.registry.registry import Registry
from server.run_dir import RunDirectory

Purged = dict[str, set[int]]


@dataclass(frozen=True)
class AffectedModel:
    """A checkpoint that carries updates trained on purged table versions.

    Parameters
    ----------
    run_dir : its run directory.
    round : the checkpoint's round.
    used : (site, table version, round) of every purged version used up to it.
    """

    run_dir: str
    round: int
    used: tuple[tuple[str, int, int], ...]


def parse_purged(items: list[str]) -> Purged:
    """``["site-001:0,1", ...]`` -> {"site-001": {0, 1}}; a malformed item is a ConfigError."""
    purged: Purged = {}
    for item in items:
        site, _, versions = item.rpartition(":")
        try:
            numbers = {int(v) for v in versions.split(",") if v.strip()}
        except ValueError:
            numbers = set()
        if not site or not numbers or min(numbers) < 0:
            raise ConfigError(f"--purged must be SITE:VERSION[,VERSION...], got '{item}'")
        purged.setdefault(site, set()).update(numbers)
    return purged


def reported_purges(run_dir: Path) -> Purged:
    """What the sites of a run reported purged (profile round and training replies)."""
    run = RunDirectory(run_dir)
    purged: Purged = {}
    for site, versions in (run.info().get("purged_versions") or {}).items():
        purged.setdefault(site, set()).update(versions)
    for line in run.rounds():
        for participant in line.get("participants", []):
            versions = participant.get("purged_versions") or []
            purged.setdefault(participant["site"], set()).update(versions)
    return purged


def affected_models(run_dirs: list[Path], purged: Purged) -> list[AffectedModel]:
    """Every checkpoint of ``run_dirs`` built on purged versions (reported or given)."""
    found = []
    for run_dir in run_dirs:
        registry = Registry(run_dir)
        known = _merge(reported_purges(run_dir), purged)
        used: list[tuple[str, int, int]] = []
        for record in registry.models():
            used += [
                (s["site"], s["table_version"], record.round)
                for s in record.sites
                if s["table_version"] in known.get(s["site"], set())
            ]
            if used:
                found.append(AffectedModel(str(run_dir), record.round, tuple(used)))
    return found


def fork_for_unlearning(
    run_dir: Path, site: str, purged: Purged, out: Path | None = None
) -> tuple[Path, int]:
    """A new run directory that replays ``run_dir`` without ``site``'s purged versions.

    It holds the rounds (metrics, checkpoints, strategy state) before the first round
    that used a purged version of ``site``, and run.json with a new run id, its own
    path and an ``unlearning`` record. Returns the new directory and the round the
    replay restarts after (0: from the initial model).
    """
    run_dir = Path(run_dir).resolve()
    registry = Registry(run_dir)
    versions = _merge(reported_purges(run_dir), purged).get(site, set())
    if not versions:
        raise ConfigError(
            f"{run_dir}: no purged versions known for site '{site}' (give --purged VERSIONS)"
        )
    first = min(
        (a.round for a in affected_models([run_dir], {site: versions}) if _uses(a, site)),
        default=None,
    )
    if first is None:
        raise RunDirError(f"{run_dir}: no model was trained on purged versions of '{site}'")
    restart_after = first - 1
    target = Path(out or run_dir.with_name(f"{run_dir.name}-unlearn-{site}")).resolve()
    if target.exists():
        raise RunDirError(f"{target}: already exists; choose another --out")
    fork = RunDirectory.create(target)
    try:
        _copy_rounds(RunDirectory(run_dir), fork, restart_after)
        info = registry.info
        config = {**info.get("config", {}), "run-dir": str(target), "resume": True}
        extra = {}
        if "simulation" in info:  # fedlife-sim resumes it on the original virtual sites
            sites_dir = info["simulation"].get("sites_dir") or str(run_dir / "sites")
            extra["simulation"] = {
                **info["simulation"],
                "run_dir": str(target),
                "sites_dir": sites_dir,
            }
        unlearning = {
            "replays_run": str(run_dir),
            "replays_run_id": info.get("run_id"),
            "site": site,
            "purged_versions": sorted(versions),
            "restarted_after_round": restart_after,
            "time": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        fork.write_json(
            "run.json",
            {
                **info,
                **extra,
                "run_id": uuid.uuid4().hex[:12],
                "config": config,
                "unlearning": unlearning,
            },
        )
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)  # never leave half a fork behind
        raise
    fork.audit().append("unlearn-fork", **{k: v for k, v in unlearning.items() if k != "time"})
    RunDirectory(run_dir).audit().append(
        "unlearn", fork=str(target), site=site, restarted_after_round=restart_after
    )
    return target, restart_after


def _uses(model: AffectedModel, site: str) -> bool:
    return any(s == site for s, _, _ in model.used)


def _merge(a: Purged, b: Purged) -> Purged:
    return {site: a.get(site, set()) | b.get(site, set()) for site in {*a, *b}}


def _copy_rounds(source: RunDirectory, fork: RunDirectory, last_round: int) -> None:
    """Rounds 1..``last_round``: their metrics lines and checkpoint files."""
    lines = [r for r in source.completed_rounds() if int(r["round"]) <= last_round]
    for line in lines:
        fork.append_round(line)
    for n in range(1, last_round + 1):
        for name in (f"round-{n:03d}.pt", f"strategy-{n:03d}.pt"):
            if (source.path / "models" / name).exists():
                shutil.copy2(source.path / "models" / name, fork.path / "models" / name)
