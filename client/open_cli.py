"""``fedlife-site open``: verify and decrypt one sealed file of the site for a person.

Opens a queue sheet or a report (``client.sealed_files``) or an archive file
(``client.retention.archive``, shown as CSV): text goes to stdout, anything to
``--out`` (a new file, owner-only; an existing file is never replaced). An altered or
renamed file, or one sealed by another site, is refused with one line; each file
opened is recorded in the audit log (its name, never its content).
"""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import typer

from client.retention.archive import SEALED as ARCHIVE_SEALED
from client.retention.retain import archive_dir, site_archive
from client.sealed_files import is_sealed, read_file
from client.site_audit import site_audit
from common.cli import one_line_errors
from common.config import SiteConfig, load_site_config
from common.errors import OpenFileError

CONFIG = typer.Option(..., "--config", "-c", help="The site's site.toml.")


def register(app: typer.Typer) -> None:
    """Add open to ``fedlife-site``."""
    app.command("open")(open_command)


@one_line_errors
def open_command(
    file: Path = typer.Argument(..., help="A sealed file: a queue sheet, report or archive file."),
    config: Path = CONFIG,
    out: Path | None = typer.Option(
        None, "--out", help="Write the opened content here (a new file) instead of stdout."
    ),
) -> None:
    """Verify and decrypt a sealed queue sheet, report or archive file of this site."""
    site_config = load_site_config(config)
    content = open_sealed(site_config, file)
    if out is not None:
        write_new(out, content)
    else:
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise OpenFileError(
                f"{file}: holds binary data (an image); pass --out PATH to write it"
            ) from None
        sys.stdout.write(text)
        sys.stdout.flush()
    site_audit(site_config).append(
        "open-sealed", file=file.name, to="stdout" if out is None else "file"
    )


def open_sealed(config: SiteConfig, file: Path) -> bytes:
    """The content ``file`` sealed: a sheet's or report's bytes; an archive file's rows
    as CSV text. Raises OpenFileError for a missing or plain file, SealError for one
    that does not open with this site's key."""
    if not file.is_file():
        raise OpenFileError(f"{file}: no such file")
    if not is_sealed(file):
        raise OpenFileError(f"{file}: not a sealed fedlife file (read it as it is)")
    archive = archive_dir(config).resolve()
    if file.name.endswith(".parquet" + ARCHIVE_SEALED) and file.resolve().is_relative_to(archive):
        rows = site_archive(config).read(file.resolve())
        buffer = io.BytesIO()
        rows.write_csv(buffer)
        return buffer.getvalue()
    return read_file(config.store_dir, file)


def write_new(target: Path, content: bytes) -> None:
    """Write ``content`` to ``target``, a file that must not exist yet (owner-only)."""
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OpenFileError(f"{target}: already exists; name a new file with --out") from None
    except OSError as error:
        raise OpenFileError(f"{target}: cannot write ({error.strerror})") from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
    except BaseException:
        target.unlink(missing_ok=True)  # half a file is no copy: none is left
        raise
