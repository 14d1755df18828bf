"""Open a page in Debian's headless chromium: its DOM after load and its console lines."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
)
# What chromium logs for a console message, an uncaught error or a blocked load.
CONSOLE_MARKERS = (":CONSOLE", "Uncaught", "Not allowed to load", "net::ERR_")


def render(page: Path, timeout_s: int = 120) -> tuple[str, list[str]]:
    """The DOM chromium built from ``page`` and the console lines it logged."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the report test needs Debian's chromium "
            "(`make test` installs it; or: apt-get install -y chromium)"
        )
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        result = subprocess.run(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.as_uri()],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-3000:]
    console = [
        line for line in result.stderr.splitlines() if any(m in line for m in CONSOLE_MARKERS)
    ]
    return result.stdout, console
