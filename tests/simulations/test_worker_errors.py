"""Flower's reports of a worker's exception shrink to one line; the text goes to a file."""

from __future__ import annotations

import logging
import traceback

import pytest
from flwr.clientapp.client_app import ClientAppException

from common.errors import ConfigError
from server.replies import one_line_reason
from simulations.worker_errors import worker_errors_to

PROBLEM = "/runs/x/sites/site-001/site.toml: not valid TOML (Expected ']' (at line 1, column 6))"


def _worker_failure() -> tuple[ClientAppException, str]:
    """What the simulation engine catches: ClientAppException from the site's error."""
    try:
        try:
            raise ConfigError(PROBLEM)
        except ConfigError as error:
            raise ClientAppException(str(error)) from error
    except ClientAppException as wrapped:
        return wrapped, traceback.format_exc()


def test_a_worker_report_says_what_the_site_raised_in_one_line():
    error, trace = _worker_failure()
    assert one_line_reason(str(error)) == PROBLEM
    assert one_line_reason(f"{type(error)}:<'{error}'>") == PROBLEM  # Flower's error reply
    assert one_line_reason(trace) == PROBLEM
    assert one_line_reason("site-002 did not answer") == "site-002 did not answer"


@pytest.fixture
def flower_log():
    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("flwr")
    logger.addHandler(handler)
    yield logger, records
    logger.removeHandler(handler)


def test_the_engines_three_reports_of_one_failure_become_one_line(flower_log, tmp_path):
    logger, shown = flower_log
    error, trace = _worker_failure()
    path = tmp_path / "worker-errors.log"
    with worker_errors_to(path):
        # vce_api and the Ray backend, in the order Flower 1.42 logs them.
        logger.error("An exception was raised when processing a message by %s", "RayBackend")
        logger.error(error)
        logger.error(trace)
        logger.warning("a warning stays as it is")
    logger.error("after the run: %s", "untouched")
    assert shown == [
        f"a site's ClientApp failed: {PROBLEM} (traceback in {path})",
        "a warning stays as it is",
        "after the run: untouched",
    ]
    kept = path.read_text()
    assert "Traceback (most recent call last)" in kept and "RayBackend" in kept
