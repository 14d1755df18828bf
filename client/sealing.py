"""Sealed files: AES-256-GCM in pieces, with keys from HKDF or a passphrase (scrypt).

What leaves the Delta tables (backups, archives, queue sheets and reports) is
written sealed: encrypted and authenticated with AES-GCM from ``cryptography``.
A file is sealed in pieces of :data:`PIECE` bytes so a large file never sits in
memory whole. Each piece is one AES-GCM message with its own random 96-bit nonce;
its associated data binds the piece to the file's ``context`` (what it is, e.g. a
backup object's name), its index and whether it is the last piece, so pieces cannot
be reordered, swapped between files, dropped or cut off without the open failing.

Layout: ``MAGIC``, then per piece a 4-byte big-endian length of the ciphertext, the
nonce and the ciphertext (with its 16-byte tag). An empty input is one empty last
piece.

Keys: :func:`derive_key` draws purpose-bound subkeys from a 32-byte key with HKDF
(SHA-256); :func:`passphrase_key` turns a passphrase into a key with scrypt, since
HKDF is for keys with full entropy, not for what a person types.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from common.errors import SealError

MAGIC = b"FLSEAL1\n"
PIECE = 4 << 20  # 4 MiB of plaintext per AES-GCM message
_NONCE = 12
# scrypt's cost, as OWASP's password guidance has it (2**17 * 8 * 128 bytes = 128 MiB).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1


def derive_key(key: bytes, purpose: str) -> bytes:
    """A 32-byte subkey of ``key`` for ``purpose`` (HKDF-SHA256); one per use."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode("utf-8")
    ).derive(key)


def passphrase_key(passphrase: str, salt: bytes, *, n: int = SCRYPT_N) -> bytes:
    """A 32-byte key from ``passphrase`` and ``salt`` (scrypt, ``n`` its cost)."""
    return Scrypt(salt=salt, length=32, n=n, r=SCRYPT_R, p=SCRYPT_P).derive(
        passphrase.encode("utf-8")
    )


def seal_bytes(key: bytes, data: bytes, context: str) -> bytes:
    """``data`` sealed whole (small records: a key, a snapshot's list of files)."""
    nonce = os.urandom(_NONCE)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, data, _aad(context, 0, last=True))


def open_bytes(key: bytes, sealed: bytes, context: str, *, what: str = "sealed data") -> bytes:
    """What :func:`seal_bytes` sealed; :class:`SealError` if altered or under another key."""
    if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + _NONCE + 16:
        raise SealError(f"{what} is not a sealed fedlife file")
    body = sealed[len(MAGIC) :]
    try:
        return AESGCM(key).decrypt(body[:_NONCE], body[_NONCE:], _aad(context, 0, last=True))
    except InvalidTag:
        raise SealError(f"{what} does not open: altered, or sealed under another key") from None


def seal_file(key: bytes, source: Path | BinaryIO, target: Path, context: str) -> int:
    """Seal ``source`` (a path or a binary reader) into ``target`` (written whole, then
    renamed); the bytes written."""
    temporary = target.with_name(target.name + ".part")
    cipher = AESGCM(key)
    written = 0
    with contextlib.ExitStack() as files:
        reader = files.enter_context(open(source, "rb")) if isinstance(source, Path) else source
        writer = files.enter_context(open(temporary, "wb"))
        writer.write(MAGIC)
        written += len(MAGIC)
        for index, (piece, last) in enumerate(_pieces(reader)):
            nonce = os.urandom(_NONCE)
            sealed = cipher.encrypt(nonce, piece, _aad(context, index, last=last))
            writer.write(struct.pack(">I", len(sealed)) + nonce + sealed)
            written += 4 + _NONCE + len(sealed)
    os.replace(temporary, target)
    return written


def open_file(key: bytes, source: Path, target: Path | BinaryIO, context: str) -> None:
    """Write what ``source`` sealed to ``target`` (a path or a binary writer).

    Raises SealError (a target path is removed) if it was altered, cut short or
    sealed under another key.
    """
    try:
        with contextlib.ExitStack() as files:
            writer = files.enter_context(open(target, "wb")) if isinstance(target, Path) else target
            _open_into(AESGCM(key), source, writer, context)
    except BaseException:
        if isinstance(target, Path):
            target.unlink(missing_ok=True)
        raise


def read_sealed(key: bytes, source: Path, context: str) -> bytes:
    """What ``source`` sealed, in memory."""
    buffer = io.BytesIO()
    open_file(key, source, buffer, context)
    return buffer.getvalue()


def _open_into(cipher: AESGCM, source: Path, writer: BinaryIO, context: str) -> None:
    with open(source, "rb") as reader:
        if reader.read(len(MAGIC)) != MAGIC:
            raise SealError(f"{source}: not a sealed fedlife file")
        index, last = 0, False
        while not last:
            header = reader.read(4 + _NONCE)
            if len(header) < 4 + _NONCE:
                raise SealError(f"{source}: sealed file is cut short")
            (length,) = struct.unpack(">I", header[:4])
            body = reader.read(length)
            last = not reader.peek(1)
            try:
                plain = cipher.decrypt(header[4:], body, _aad(context, index, last=last))
            except InvalidTag:
                raise SealError(
                    f"{source}: sealed file does not open (altered, cut short, or "
                    "sealed under another key)"
                ) from None
            writer.write(plain)
            index += 1


def _pieces(reader) -> Iterator[tuple[bytes, bool]]:
    piece = reader.read(PIECE)
    while True:
        following = reader.read(PIECE)
        yield piece, not following
        if not following:
            return
        piece = following


def _aad(context: str, index: int, *, last: bool) -> bytes:
    return MAGIC + context.encode("utf-8") + b"\0" + struct.pack(">QB", index, int(last))
