"""The site's sealing keys: what sealed files (archive, sheets, reports) are sealed under.

Each purpose (``"fedlife archive"``, ``"fedlife sheets and reports"``) gets its own
key, drawn by HKDF from a root key of the current *generation*. Generation 0 is the
site's key (``store/audit/hmac.key``), as before rotation existed; a rotation
(``client.retention.rotate``) makes generation n+1, a random 32-byte key in
``store/keys/seal-<n>.key`` (mode 0600), and ``store/keys/sealing.json`` names the
current generation and those still being replaced. New files are sealed under the
current generation; a reader tries the current one first, then the retiring ones,
so a rotation stopped half-way leaves every file readable.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from client.privacy.pseudonyms import site_key
from client.sealing import derive_key
from common.atomic_files import fsync_path, write_atomically
from common.audit import load_or_create_key
from common.errors import StoreError

KEYS = Path("keys")
STATE = KEYS / "sealing.json"


def generations(store_dir: Path) -> tuple[int, list[int]]:
    """The current generation and the retiring ones (being replaced by a rotation)."""
    path = Path(store_dir) / STATE
    if not path.exists():
        return 0, []
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        return int(state["current"]), [int(g) for g in state.get("retiring", [])]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise StoreError(f"{path}: unreadable sealing key state ({error})") from None


def root_key(store_dir: Path, generation: int) -> bytes:
    """The root key of ``generation`` (0: the site's key); a missing one is refused."""
    if generation == 0:
        return site_key(store_dir)
    path = key_path(store_dir, generation)
    if not path.exists():
        raise StoreError(f"{path}: sealing key missing; restore store/keys from a backup")
    return load_or_create_key(path)


def key_path(store_dir: Path, generation: int) -> Path:
    return Path(store_dir) / KEYS / f"seal-{generation}.key"


def key_files(store_dir: Path) -> list[tuple[int, Path]]:
    """The sealing key files ``store/keys/seal-<n>.key`` there are, with their generations."""
    found = []
    for path in (Path(store_dir) / KEYS).glob("seal-*.key"):
        number = path.stem.removeprefix("seal-")
        if number.isdigit():
            found.append((int(number), path))
    return found


def sealing_keys(store_dir: Path, purpose: str) -> list[bytes]:
    """The keys for ``purpose``: the current generation's first (new files are sealed
    under it), then the retiring ones' (files a rotation has not re-sealed yet)."""
    current, retiring = generations(store_dir)
    return [derive_key(root_key(store_dir, g), purpose) for g in (current, *retiring)]


def make_generation(store_dir: Path, generation: int) -> None:
    """Write a new random root key for ``generation`` (owner-only, durable); one that
    exists already (a rotation stopped before it was named current) is kept."""
    path = key_path(store_dir, generation)
    path.parent.mkdir(parents=True, exist_ok=True)
    load_or_create_key(path, content=secrets.token_bytes(32))
    fsync_path(path)
    fsync_path(path.parent)


def set_generations(store_dir: Path, current: int, retiring: list[int]) -> None:
    """Record the current and retiring generations, whole or not at all (durably)."""
    path = Path(store_dir) / STATE
    data = json.dumps({"current": current, "retiring": retiring})
    write_atomically(path, data, private=True, durable=True)
