"""The final model of an encrypted run, at a site.

It stays encrypted at the coordinator (``model.he`` in its run directory). A site can

* decrypt it for the coordinator's registry when its policy agrees
  (``[privacy] decrypt_final_for_coordinator = true``), once per run it trained in: the coordinator
  asks every site after the last round, and records who decrypted it;
* decrypt and export it for itself (``fedlife-site model export``) from a copy of the
  run directory (``run.json`` and ``model.he`` suffice), in the bundle format of
  ``fedlife-coord models export`` (:mod:`common.model_bundle`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from client.site import Site
from client.site_audit import site_audit
from common import keys
from common.cli import one_line_errors
from common.config import load_site_config
from common.errors import RunDirError
from common.he_keys import read_chunks

ACTION = "decrypt-final"
FINAL_MODEL = "model.he"

model_app = typer.Typer(help="The federation's final model at this site.", no_args_is_help=True)


def decrypt_final_reply(site: Site, message: Any, keys_folder: Path) -> Any:
    """Answer the coordinator's request to decrypt a run's final model: the arrays when
    the site's policy agrees and it has not done so for this run yet, else the reason."""
    from flwr.app import ArrayRecord, Message

    from client.federation.site_replies import excluded, site_record_of
    from client.privacy import he
    from common.features import FeatureSpec
    from common.models import build_model
    from common.wire.messages import DecryptedModelReply

    config = message.content[keys.CONFIG]
    run_id = str(config[keys.RUN_ID])
    if not site.config.privacy.decrypt_final_for_coordinator:
        reason = "policy: the final model stays encrypted (decrypt_final_for_coordinator is off)"
        return excluded(message, site.name, reason)
    # Only for a run this site trained in, once: a coordinator cannot make up run ids to
    # have one ciphertext after another decrypted.
    if not any(entry.run_id == run_id for entry in site.ledger.entries()):
        reason = f"policy: this site trained in no round of run {run_id}"
        return excluded(message, site.name, reason)
    audit = site_audit(site.config)
    if any(e["action"] == ACTION and e["fields"].get("run") == run_id for e in audit.entries()):
        reason = f"policy: the final model of run {run_id} was decrypted once already"
        return excluded(message, site.name, reason)
    ctx = he.context_for(config, keys_folder)
    spec = FeatureSpec.from_json(str(config[keys.FEATURE_SPEC]))
    template = build_model(str(config[keys.MODEL]), spec.num_features, spec.num_classes)
    state = he.decrypt_state(ctx, list(config[keys.CHUNKS]), template.state_dict())
    audit.append(ACTION, run=run_id, round=int(config[keys.SERVER_ROUND]))
    reply = DecryptedModelReply(arrays=ArrayRecord(state), site=site_record_of(site))
    return Message(reply.to_content(), reply_to=message)


def export_final_model(
    site_config: Path,
    run_dir: Path,
    out: Path,
    *,
    bundle: Path | None = None,
    force: bool = False,
) -> list[Path]:
    """Decrypt ``run_dir``'s final model with this site's secret context and write it
    to ``out`` as a model bundle.

    Parameters
    ----------
    site_config : the site's site.toml.
    run_dir : the encrypted run's directory, or a copy of its run.json and model.he.
    out : the bundle's folder.
    bundle : the site's bundle with its secret HE context (default: site.toml's folder).
    force : replace a bundle ``out`` already holds.
    """
    from client.privacy import he
    from common.features import FeatureSpec
    from common.model_bundle import check_target, write_bundle
    from common.models import build_model

    config = load_site_config(site_config)
    check_target(out, force=force)
    info = _run_info(run_dir)
    if not info.get("he_key_id") or not info.get("feature_spec"):
        raise RunDirError(f"{run_dir}: not an encrypted run (run.json names no HE key)")
    encrypted = run_dir / FINAL_MODEL
    if not encrypted.is_file():
        raise RunDirError(f"{encrypted}: missing; the run has not finished a round yet")
    ctx = he.federation_context(bundle or config.base_dir, str(info["he_key_id"]))
    spec = FeatureSpec.from_json(str(info["feature_spec"]))
    name = str(info["config"]["model"])
    model = build_model(name, spec.num_features, spec.num_classes)
    model.load_state_dict(he.decrypt_state(ctx, read_chunks(encrypted), model.state_dict()))
    rounds = _rounds(run_dir)
    lineage = {
        "round": rounds[-1] if rounds else None,
        "path": str(encrypted),
        "run_id": str(info.get("run_id", "")),
        "model": name,
        "strategy": str(info["config"].get("strategy", "")),
        "he_key_id": str(info["he_key_id"]),
        "decrypted_by": config.site.name,
    }
    written = write_bundle(out, model.eval(), spec, lineage, force=force)
    site_audit(config).append("model-export", run=lineage["run_id"], out=str(out))
    return written


def _run_info(run_dir: Path) -> dict[str, Any]:
    try:
        info = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        raise RunDirError(
            f"{run_dir}: not a fedlife run directory (no readable run.json)"
        ) from None
    if not isinstance(info, dict):
        raise RunDirError(f"{run_dir / 'run.json'}: not a JSON object")
    return info


def _rounds(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [int(json.loads(x)["round"]) for x in lines if x.strip() and '"round"' in x]


@model_app.command("export")
@one_line_errors
def model_export_command(
    config: Path = typer.Option(..., "--config", "-c", help="The site's site.toml."),
    run: Path = typer.Option(
        ..., "--run", help="The encrypted run's directory (or a copy of run.json and model.he)."
    ),
    out: Path = typer.Option(..., "--out", help="Folder to write the bundle to."),
    bundle: Path | None = typer.Option(
        None, help="The site's bundle with its secret HE context (default: site.toml's folder)."
    ),
    *,
    force: bool = typer.Option(False, "--force", help="Replace a bundle already in --out."),
) -> None:
    """Decrypt an encrypted run's final model here and export it (state dict,
    TorchScript, feature spec, lineage), as fedlife-coord models export does."""
    for path in export_final_model(config, run, out, bundle=bundle, force=force):
        typer.echo(str(path))
