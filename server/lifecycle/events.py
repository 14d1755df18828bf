"""Every lifecycle decision as one JSON line, in the audit log and optionally a webhook.

``<state>/events.jsonl`` gets one line per decision (retrain fired or not, a site's
drift above threshold, promotion, rollback); the coordinator's hash-chained audit
log (``<state>/audit/``) gets the same entry, so the record cannot be edited
unseen. With a ``--notify`` URL the line is also POSTed as JSON; a webhook that is
down is a warning, never a reason to lose the decision, which is already on disk.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.audit import AuditLog
from common.errors import RunDirError
from server.run_dir import finite

EVENTS = "events.jsonl"
NOTIFY_TIMEOUT_S = 10.0
logger = logging.getLogger("fedlife.events")


class Events:
    """The events of one coordinator state folder.

    Parameters
    ----------
    state : the coordinator's state folder (``events.jsonl``, ``audit/`` go there).
    notify : URL every event is POSTed to as JSON ('' = none).
    """

    def __init__(self, state: str | Path, notify: str = "") -> None:
        self.state = Path(state)
        self.notify = notify
        self.audit = AuditLog(self.state / "audit", "coordinator")
        if notify and not notify.startswith(("http://", "https://")):
            raise RunDirError(f"--notify {notify}: not an http(s) URL")

    def emit(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record ``event`` with ``fields``: events.jsonl, audit log, webhook."""
        line = finite(
            {"time": datetime.now(UTC).isoformat(timespec="seconds"), "event": event, **fields}
        )
        text = json.dumps(line, default=str)
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            with open(self.state / EVENTS, "a", encoding="utf-8") as handle:
                handle.write(text + "\n")
        except OSError as error:
            raise RunDirError(f"{self.state / EVENTS}: cannot write ({error.strerror})") from None
        self.audit.append(event, **fields)
        if self.notify:
            self._post(text)
        return line

    def read(self) -> list[dict[str, Any]]:
        """Every event recorded so far."""
        path = self.state / EVENTS
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def _post(self, text: str) -> None:
        request = urllib.request.Request(
            self.notify,
            data=text.encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_S) as response:
                response.read()
        except (urllib.error.URLError, OSError) as error:
            logger.warning("--notify %s failed: %s", self.notify, error)
