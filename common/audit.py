"""A hash-chained, append-only audit log (JSON lines) with its chain head kept apart.

Each entry is one JSON line::

    {"seq": 3, "time": "...", "actor": "site st-mary", "action": "erase",
     "fields": {...}, "prev_hash": "<hash of entry 2>", "hash": "<sha256 of this entry>"}

``hash`` covers every other key of the entry, ``prev_hash`` ties it to the entry
before, so editing, removing or reordering an entry breaks the chain at that entry.
Removing the *last* entries leaves a shorter chain that is still consistent; the
chain head (last ``seq`` and ``hash``) is therefore written to a separate file on
every append, and :meth:`AuditLog.verify` checks the log ends where the head says.

Entries describe actions, never data: no row values, no subject ids. Where an entry
must refer to something identifying (an erasure request), it holds a keyed hash
(:func:`keyed_digest`) whose key stays with the owner of the log.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import math
import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.atomic_files import write_atomically
from common.errors import StoreError

GENESIS = "0" * 64
LOG_NAME, HEAD_NAME = "audit.jsonl", "audit-head.json"
# An entry longer than this is never taken for the end of a stopped append.
_TAIL_BYTES = 1024 * 1024

# flock locks of two open files conflict even inside one process, so a lock taken
# again by its holder (the ledger's check-and-record around its own append) would
# wait for itself. Each lock file is therefore flocked once per process: a
# re-entrant thread lock per file keeps other threads out, a depth count says when
# the holder's outermost block ends.
_LOCKS: dict[Path, tuple[threading.RLock, list[int]]] = {}
_LOCKS_GUARD = threading.Lock()
os.register_at_fork(after_in_child=_LOCKS.clear)  # a forked child holds none of them


@dataclass(frozen=True)
class AuditProblem:
    """The first place where a log stops being trustworthy.

    Parameters
    ----------
    line : 1-based line of the log (0: the problem is the head file or a missing tail).
    seq : the sequence number expected there.
    reason : what is wrong, in words.
    """

    line: int
    seq: int
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line} (seq {self.seq})" if self.line else f"seq {self.seq}"
        return f"{where}: {self.reason}"


def keyed_digest(key: bytes, text: str) -> str:
    """HMAC-SHA256 of ``text``: refers to it without revealing it to whoever lacks ``key``."""
    return hmac.digest(key, text.encode("utf-8"), "sha256").hex()


def load_or_create_key(path: Path, *, content: bytes | None = None) -> bytes:
    """The secret key in ``path`` (owner-only), created on first use.

    A new key is 32 random bytes, or ``content`` when given (a key derived elsewhere).
    An existing key is returned as it is.
    """
    try:
        if path.exists():
            return path.read_bytes()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_bytes(32) if content is None else content
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key)
        return key
    except FileExistsError:
        return path.read_bytes()  # another process created it first
    except OSError as error:
        raise StoreError(f"{path}: cannot read or create the key ({error.strerror})") from None


def _plain(value: Any) -> Any:
    """``value`` as strict JSON data: non-finite floats become None, the rest str."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def entry_hash(entry: dict[str, Any]) -> str:
    """sha256 of the entry's canonical JSON, its own ``hash`` left out."""
    body = {k: v for k, v in entry.items() if k != "hash"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLog:
    """One audit log: ``<directory>/audit.jsonl`` and its head ``audit-head.json``.

    Parameters
    ----------
    directory : where the log and its head live; created on the first append.
    actor : who appends (e.g. ``"site st-mary"``, ``"coordinator"``).
    log_name, head_name : file names of the log and its head (another chain, such as
        the privacy ledger, may live in the same kind of files elsewhere).
    """

    def __init__(
        self,
        directory: str | Path,
        actor: str,
        *,
        log_name: str = LOG_NAME,
        head_name: str = HEAD_NAME,
    ) -> None:
        self.dir = Path(directory)
        self.path = self.dir / log_name
        self.head_path = self.dir / head_name
        self.lock_path = self.path.with_suffix(".lock")
        self.actor = actor

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the log's writer lock (``<log>.lock``); re-entrant for its holder.

        One writer at a time keeps ``seq`` unique. A caller that must check the log
        and append to it as one step (the privacy ledger) holds this around both;
        :meth:`append` inside it does not lock again.
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        key = self.lock_path.resolve()
        with _LOCKS_GUARD:
            thread_lock, depth = _LOCKS.setdefault(key, (threading.RLock(), [0]))
        with thread_lock:
            if depth[0]:
                depth[0] += 1
                try:
                    yield
                finally:
                    depth[0] -= 1
                return
            with open(self.lock_path, "a") as handle:
                fcntl.flock(handle, fcntl.LOCK_EX)  # the operating system's: a crash frees it
                depth[0] = 1
                try:
                    yield
                finally:
                    depth[0] = 0
                    fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, action: str, **fields: Any) -> dict[str, Any]:
        """Append one entry (durably) and move the head; return the entry."""
        try:
            with self.locked():
                head = self._head() or {"seq": 0, "hash": GENESIS}
                entry = {
                    "seq": head["seq"] + 1,
                    "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    "actor": self.actor,
                    "action": action,
                    "fields": _plain(fields),
                    "prev_hash": head["hash"],
                }
                entry["hash"] = entry_hash(entry)
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                new_head = json.dumps({"seq": entry["seq"], "hash": entry["hash"]})
                write_atomically(self.head_path, new_head)
        except OSError as error:
            reason = error.strerror
            raise StoreError(f"{self.path}: cannot append to the audit log ({reason})") from None
        return entry

    def entries(self) -> list[dict[str, Any]]:
        """Every entry as written (unverified); see :meth:`verify`."""
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def verify(self) -> AuditProblem | None:
        """The first edited, removed, reordered or missing entry; None if the log is intact."""
        lines = self.path.read_text(encoding="utf-8").splitlines() if self.path.exists() else []
        previous, seq = GENESIS, 0
        for number, line in enumerate(lines, start=1):
            seq += 1
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                return AuditProblem(number, seq, "not a JSON entry")
            if not isinstance(entry, dict) or entry.get("seq") != seq:
                found = entry.get("seq") if isinstance(entry, dict) else None
                return AuditProblem(
                    number,
                    seq,
                    f"seq {found} where {seq} was expected (an entry was removed or reordered)",
                )
            if entry.get("prev_hash") != previous:
                return AuditProblem(
                    number,
                    seq,
                    "does not follow the entry before it (an entry was removed or reordered)",
                )
            if entry.get("hash") != entry_hash(entry):
                return AuditProblem(number, seq, "its content does not match its hash (edited)")
            previous = entry["hash"]
        head = self._head()
        if head is None:
            return None if not lines else AuditProblem(0, seq, "the chain head file is missing")
        if head["seq"] != seq or head["hash"] != previous:
            if head["seq"] > seq:
                return AuditProblem(
                    0,
                    seq + 1,
                    f"the log ends at seq {seq} but its head records seq "
                    f"{head['seq']}: the last {head['seq'] - seq} entries were removed",
                )
            return AuditProblem(0, seq, "the log's last entry does not match its head")
        return None

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the chain's head file; ``(0, GENESIS)`` before the first append."""
        head = self._head() or {"seq": 0, "hash": GENESIS}
        return head["seq"], head["hash"]

    def _head(self) -> dict[str, Any] | None:
        """The head file's (seq, hash), moved over an append that stopped before it.

        An append writes and fsyncs its line, then replaces the head file. A process
        killed between the two leaves one whole entry past the head, chained to it (or,
        for the first entry, from genesis with no head file yet): that entry is the head.
        Anything else past the head, or a chain cut short, still fails :meth:`verify`.
        """
        recorded = self._recorded_head()
        last = self._last_entry()
        if last is not None and last.get("hash") == entry_hash(last):
            seq, previous = (recorded["seq"], recorded["hash"]) if recorded else (0, GENESIS)
            if last.get("seq") == seq + 1 and last.get("prev_hash") == previous:
                return {"seq": seq + 1, "hash": str(last["hash"])}
        return recorded

    def _recorded_head(self) -> dict[str, Any] | None:
        if not self.head_path.exists():
            return None
        try:
            head = json.loads(self.head_path.read_text())
            return {"seq": int(head["seq"]), "hash": str(head["hash"])}
        except (OSError, ValueError, KeyError, TypeError):
            return {"seq": -1, "hash": ""}  # an unreadable head never matches

    def _last_entry(self) -> dict[str, Any] | None:
        """The log's last line as an entry (None: no log, or not an entry)."""
        try:
            with open(self.path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                end = handle.tell()
                handle.seek(max(0, end - _TAIL_BYTES))
                tail = handle.read().rstrip(b"\n").rsplit(b"\n", 1)[-1]
            entry = json.loads(tail)
        except (OSError, ValueError):
            return None
        return entry if isinstance(entry, dict) else None
