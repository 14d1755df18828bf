"""Lifecycle events: one JSON line in events.jsonl and the audit log, POSTed to a
webhook (a real local HTTP server); a webhook that is down loses nothing."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from common.audit import AuditLog
from common.errors import RunDirError
from server.lifecycle.events import Events


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((self.headers["Content-Type"], json.loads(body)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def webhook():
    _Hook.received = []
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Hook.received
    server.shutdown()
    server.server_close()


def test_event_is_a_line_an_audit_entry_and_a_post(tmp_path: Path, webhook) -> None:
    url, received = webhook
    events = Events(tmp_path, url)
    events.emit("retrain-fired", reason="'drift > 0.25' is true (drift=0.4)", values={"drift": 0.4})
    events.emit("promoted", production={"run_dir": "/r/2"})
    lines = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [line["event"] for line in lines] == ["retrain-fired", "promoted"]
    assert lines[0]["values"] == {"drift": 0.4}
    assert [body for _, body in received] == lines
    assert {kind for kind, _ in received} == {"application/json"}
    audit = AuditLog(tmp_path / "audit", "coordinator")
    assert [e["action"] for e in audit.entries()] == ["retrain-fired", "promoted"]
    assert audit.verify() is None


def test_webhook_down_still_records(tmp_path: Path, caplog) -> None:
    with socket.socket() as probe:  # a free port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    events = Events(tmp_path, f"http://127.0.0.1:{port}/")
    events.emit("rolled-back", production={"run_dir": "/r/1"})
    assert events.read()[0]["event"] == "rolled-back"
    assert "--notify" in caplog.text


def test_notify_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not an http"):
        Events(tmp_path, "file:///etc/passwd")
    assert not (tmp_path / "events.jsonl").exists()
