"""``fedlife-site rotate-key``: re-seal every sealed file of the site under a new key.

What rotates is the *sealing* key (``client.sealing_keys``): the root from which
HKDF draws the keys of the archive files and of the queue sheets and reports. The
pseudonym key (``store/audit/hmac.key``) does not rotate: see
:data:`PSEUDONYM_KEY_REFUSAL` and docs/guides/store-security.md.

A rotation, and why a crash at any point loses nothing:

1. a new root key ``store/keys/seal-<n>.key`` is written and synced; then
   ``store/keys/sealing.json`` names it current and the old generation *retiring*
   (written aside, synced, renamed). From then on new files are sealed under the
   new key, and every reader tries the current key, then the retiring ones;
2. every sealed file is opened and re-sealed under the new key, each one written
   aside and renamed over the old (``client.sealing.seal_file``): a file is always
   whole under one of the two keys, both of which the store holds (it is held in
   memory while it is re-sealed, as reading an archive file already is). A second
   pass catches a file another process wrote under the old key meanwhile;
3. only when no file is left under the old key does ``sealing.json`` drop the
   retiring generation, and then its key file is deleted (generation 0, the site
   key itself, is never deleted: it is the pseudonym key).

Stopped anywhere (a crash, a file that opens under no key, a full disk), the store
holds both generations and every file opens; ``rotate-key`` again finishes that
rotation instead of starting another. A configured archive folder that is missing
(a disk not mounted) is refused before anything changes: its files would be left
under a key the rotation deletes.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import typer
from rich.console import Console

from client.retention.archive import SEALED, Archive
from client.retention.retain import ARCHIVE_PURPOSE, archive_dir
from client.sealed_files import PURPOSE as FILES_PURPOSE
from client.sealed_files import context as file_context
from client.sealing import read_sealed, seal_file
from client.sealing_keys import (
    generations,
    key_files,
    key_path,
    make_generation,
    sealing_keys,
    set_generations,
)
from client.site_audit import site_audit
from common.cli import one_line_errors
from common.config import SiteConfig, load_site_config
from common.errors import KeyRotationError, SealError

PSEUDONYM_KEY_REFUSAL = (
    "the pseudonym key (store/audit/hmac.key) cannot be rotated in place: every stored id "
    "and erasure request is an HMAC under it and the store holds no clear id to hash "
    "again; rotate-key rotates the sealing key only"
)


@dataclass
class Rotation:
    """What a rotation did."""

    generation: int
    retired: list[int]
    resealed: int = 0
    already_current: int = 0
    files: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


def rotate_sealing_key(config: SiteConfig) -> Rotation:
    """Re-seal every sealed file of the site under a new sealing key (see the module);
    finish a rotation that was stopped instead, if there is one."""
    store = config.store_dir
    if not store.is_dir():
        raise KeyRotationError(f"{store}: no store (run fedlife-site prepare)")
    _sealed_files(config)  # a missing archive folder is refused before anything changes
    current, retiring = generations(store)
    if not retiring:
        made = [generation for generation, _ in key_files(store)]
        new = max([current, *made]) + 1  # past any key file a stopped rotation left
        make_generation(store, new)
        set_generations(store, new, [current])
        current, retiring = new, [current]
    done = Rotation(current, list(retiring))
    keys = {purpose: sealing_keys(store, purpose) for purpose in (ARCHIVE_PURPOSE, FILES_PURPOSE)}
    for _ in range(2):  # the second pass: files sealed under the old key meanwhile
        for path, purpose, context in _sealed_files(config):
            new_key, *old_keys = keys[purpose]
            if _reseal(path, context, new_key, old_keys):
                done.resealed += 1
                done.files.append(str(path))
            elif str(path) not in done.files:
                done.already_current += 1
                done.files.append(str(path))
    set_generations(store, current, [])
    # Generation 0 is the site key itself (pseudonyms need it): only key files go,
    # the retired one and any a rotation stopped before naming it current left.
    for _, path in key_files(store):
        if path != key_path(store, current):
            path.unlink()
    site_audit(config).append(
        "rotate-key",
        generation=current,
        retired=retiring,
        resealed=done.resealed,
        already_current=done.already_current,
    )
    return done


def _sealed_files(config: SiteConfig) -> list[tuple[Path, str, str]]:
    """Every sealed file of the site: (path, key purpose, what its seal is bound to)."""
    archive = Archive(archive_dir(config))
    if config.retention.archive_dir and not archive.root.is_dir():
        raise KeyRotationError(
            f"{archive.root}: archive folder not found (a disk not mounted?); mount it, or "
            "create it empty if the site has archived nothing yet, then rotate again"
        )
    found = [
        (path, ARCHIVE_PURPOSE, archive.context(path))
        for path in archive.files()
        if path.name.endswith(SEALED)
    ]
    for folder in ("labeling", "reports"):
        for path in sorted((config.store_dir / folder).glob("*" + SEALED)):
            found.append((path, FILES_PURPOSE, file_context(path.name)))
    return found


def _reseal(path: Path, context: str, new_key: bytes, old_keys: list[bytes]) -> bool:
    """Re-seal ``path`` under ``new_key`` if an old key opens it; False if it is
    already under the new key. KeyRotationError if no key of the site opens it."""
    try:
        read_sealed(new_key, path, context)
        return False
    except SealError:
        pass
    for key in old_keys:
        try:
            content = read_sealed(key, path, context)
        except SealError:
            continue
        seal_file(new_key, io.BytesIO(content), path, context)  # aside, then renamed over
        return True
    raise KeyRotationError(
        f"{path}: opens under no key of this site (altered, renamed or another site's); "
        "the rotation is not finished and every other file still opens: restore or "
        "remove that file, then run rotate-key again"
    )


@one_line_errors
def rotate_key_command(
    config: Path = typer.Option(..., "--config", "-c", help="The site's site.toml."),
    *,
    pseudonym_key: bool = typer.Option(
        False, "--pseudonym-key", help="Rotate the pseudonym key instead: refused (see docs)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Re-seal the archive, queue sheets and reports under a new sealing key; the old
    key is deleted once no file needs it. Run it when no other command uses the store."""
    site_config = load_site_config(config)
    if pseudonym_key:
        raise KeyRotationError(PSEUDONYM_KEY_REFUSAL)
    done = rotate_sealing_key(site_config)
    if as_json:
        print(json.dumps(done.to_json()))
        return
    console = Console()
    console.print(
        f"sealing key generation {done.generation}: {done.resealed} file(s) re-sealed, "
        f"{done.already_current} already under it; generation(s) {done.retired} retired",
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        "take a backup now: backups taken before hold only the retired key, which no "
        "longer opens the archive",
        highlight=False,
        soft_wrap=True,
    )
