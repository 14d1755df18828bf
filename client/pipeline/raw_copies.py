"""The record of which bytes made a version: content-addressed copies of the raw files.

A full prepare keeps each raw file once by its sha256; an incremental one keeps only
the bytes a grown file added (with the earlier copies they make up the file).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from client.pipeline import incremental
from client.privacy.pseudonyms import id_column, personal_columns
from client.retention.erasure import ErasureRequests
from client.store import keep_raw_files
from common.config import SiteConfig


def store_raw_files(config: SiteConfig, inputs: dict[str, str]) -> dict[str, dict[str, str]]:
    """Keep content-addressed copies of the raw files; name each file's digest and copy.

    A raw file holds every subject verbatim, erased ones too (the site's files are never
    modified): once any erasure was requested, only the digests are recorded, no copy;
    nor where the schema has an id or pii column (the store holds no clear id).
    """
    copies = {}
    schema = config.schema
    identifying = id_column(schema) is not None or bool(personal_columns(schema))
    if not identifying and not ErasureRequests(config.store_dir).all():
        copies = keep_raw_files(config.store_dir, inputs)
    return {
        path: {"sha256": digest, "copy": copies.get(path, "")} for path, digest in inputs.items()
    }


def piece_copies(
    config: SiteConfig, planned: incremental.Plan, work: Path
) -> dict[str, dict[str, object]]:
    """The added bytes' record: each piece's digest and content-addressed copy.

    A grown file's copy holds only its new bytes (``from_byte``..``to_byte``); with the
    earlier versions' copies they make up the file. No copy once any erasure was
    requested, nor of identifying files (see ``store_raw_files``).
    """
    pieces = {}
    for piece in planned.pieces:
        with open(piece.path, "rb") as handle:
            handle.seek(piece.start)
            content = handle.read(piece.end - piece.start)
        tail = work / "pieces" / piece.path.name
        tail.parent.mkdir(exist_ok=True)
        tail.write_bytes(content)
        digest = hashlib.sha256(content).hexdigest()
        record = store_raw_files(config, {str(tail): digest})[str(tail)]
        pieces[str(piece.path)] = {
            **record,
            "from_byte": piece.start,
            "to_byte": piece.end,
        }
    return pieces
