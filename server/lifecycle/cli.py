"""``fedlife-coord models promote|rollback|aliases``: the registry's aliases by hand.

``retrain`` promotes a challenger that passes the rule by itself; these commands are
the operator's: promote an evaluated challenger the rule held back, or put the
previous model back. Every change is an event (events.jsonl, audit log, webhook).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from common.cli import one_line_errors
from server.lifecycle.coord_retrain import retrain_command
from server.lifecycle.events import Events
from server.lifecycle.promotion import Aliases
from server.lifecycle.schedule import register as register_schedule

STATE_HELP = "The coordinator's state folder (default: the folder holding RUN_DIR)."
NOTIFY_HELP = "Webhook URL the event is POSTed to as JSON."


def _state(state: Path | None, run_dir: Path | None) -> Path:
    if state is not None:
        return state
    return (run_dir or Path(".")).resolve().parent


@one_line_errors
def promote_command(
    run_dir: Path = typer.Argument(..., help="An evaluated challenger's run directory."),
    state: Path | None = typer.Option(None, help=STATE_HELP),
    notify: str = typer.Option("", help=NOTIFY_HELP),
) -> None:
    """Make an evaluated challenger production; the current production becomes previous."""
    folder = _state(state, run_dir)
    aliases = Aliases(folder).promote(run_dir, Events(folder, notify))
    print(f"production: {aliases['production']['run_dir']}")
    print(f"previous:   {aliases['previous']['run_dir']}")


@one_line_errors
def rollback_command(
    run_dir: Path | None = typer.Argument(
        None, help="The production model to replace (a check; default: whatever it is)."
    ),
    state: Path | None = typer.Option(None, help=STATE_HELP),
    notify: str = typer.Option("", help=NOTIFY_HELP),
) -> None:
    """Put the previous model back as production."""
    folder = _state(state, run_dir)
    aliases = Aliases(folder).rollback(Events(folder, notify), run_dir)
    print(f"production: {aliases['production']['run_dir']}")


@one_line_errors
def aliases_command(
    state: Path = typer.Option(..., help="The coordinator's state folder."),
) -> None:
    """The production and previous models, as JSON."""
    print(json.dumps(Aliases(state).read(), indent=2))


def register_coordinator(app: typer.Typer) -> None:
    """Add ``retrain`` and ``schedule print`` to ``fedlife-coord``."""
    app.command("retrain")(retrain_command)
    register_schedule(app)


def register(models_app: typer.Typer) -> None:
    """Add promote, rollback and aliases to ``fedlife-coord models``."""
    models_app.command("promote")(promote_command)
    models_app.command("rollback")(rollback_command)
    models_app.command("aliases")(aliases_command)
