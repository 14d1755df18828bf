"""What the three CLIs share: one-line errors, exit codes, a stderr console."""

from __future__ import annotations

import functools
import os
import shutil
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from common.errors import FedlifeError, StoppedByUser

F = TypeVar("F", bound=Callable[..., Any])

err_console = Console(stderr=True)


def console_script(name: str) -> str:
    """A console script of this environment (next to the interpreter), else from PATH."""
    sibling = os.path.join(os.path.dirname(sys.executable), name)
    if os.path.exists(sibling):
        return sibling
    found = shutil.which(name)
    if found is None:
        raise FedlifeError(f"{name} not found next to {sys.executable} or on PATH")
    return found


def progress_bar(title: str, counter: str) -> Progress:
    """One progress bar on stderr (hidden when stderr is not a terminal).

    Parameters
    ----------
    title : bold label before the bar (may use ``{task.fields[...]}``).
    counter : the count after the bar, e.g. ``"{task.completed}/{task.total}"``.
    """
    return Progress(
        TextColumn(f"[bold]{title}"),
        BarColumn(),
        TextColumn(counter),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
    )


def user_error(error: BaseException) -> FedlifeError | None:
    """The FedlifeError behind ``error``, however deeply a framework wrapped it."""
    seen = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, FedlifeError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def one_line_errors(command: F) -> F:
    """Turn a user-caused error into ``error: <message>`` and a non-zero exit."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
        try:
            try:
                return command(*args, **kwargs)
            except KeyboardInterrupt:
                # Every write commits whole or not at all (Delta commits, atomic renames).
                raise StoppedByUser(
                    "interrupted: what was committed before stays; nothing half-written is kept"
                ) from None
        except Exception as error:  # noqa: BLE001 - only user errors are shown bare
            found = user_error(error)
            if found is None or os.environ.get("FEDLIFE_DEBUG"):
                raise
            err_console.print(f"[red]error:[/red] {found}", highlight=False, soft_wrap=True)
            sys.exit(found.exit_code)

    return wrapper  # type: ignore[return-value]


def fedlife_version() -> str:
    try:
        return version("fedlife")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def _print_version(*, value: bool) -> None:
    if value:
        print(f"fedlife {fedlife_version()}")
        raise typer.Exit()


VERSION_OPTION = typer.Option(
    False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
)
