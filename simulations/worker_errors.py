"""A worker's exception: one line on the terminal, its traceback in the run directory.

When a virtual site's ClientApp raises (a broken site.toml, say), Flower's simulation
engine logs the Ray task error twice at ERROR level, the worker's traceback and then
the driver's, dozens of lines between the progress bar and the closing table. The
filter here keeps both in ``<run_dir>/worker-errors.log`` and lets through one line
per failure: what the site raised, and where the traceback is.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from server.replies import one_line_reason

FLOWER_LOGGER = "flwr"
WORKER_ERRORS = "worker-errors.log"
# The Ray backend's line before the error itself: says nothing the next line does not.
_PREAMBLE = "An exception was raised when processing a message"


class WorkerErrorFilter(logging.Filter):
    """Turns Flower's multi-line worker error records into one line; the text goes to a file.

    Parameters
    ----------
    path : the file the full records are appended to.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR:
            return True
        text = record.getMessage()
        worker = "ClientAppException" in text or text.startswith(_PREAMBLE)
        if "\n" not in text.strip() and not worker:
            return True
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(text.rstrip() + "\n\n")
        if text.lstrip().startswith(("Traceback", _PREAMBLE)):
            return False  # the driver's traceback of the failure reported in one line
        record.msg = "a site's ClientApp failed: %s (traceback in %s)"
        record.args = (one_line_reason(text), self.path)
        return True


@contextmanager
def worker_errors_to(path: Path) -> Iterator[WorkerErrorFilter]:
    """Filter the Flower logger's worker error records into ``path`` while the block runs."""
    worker_filter = WorkerErrorFilter(path)
    logger = logging.getLogger(FLOWER_LOGGER)
    logger.addFilter(worker_filter)
    try:
        yield worker_filter
    finally:
        logger.removeFilter(worker_filter)
