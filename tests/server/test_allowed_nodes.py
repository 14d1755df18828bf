"""``allowed-nodes``: the run config that keeps self-registered nodes out of a run."""

from __future__ import annotations

import pytest

from common.errors import ConfigError
from common.run_config import RunConfig
from server.deploy.allowed_nodes import parse_node_ids


def test_node_ids_beyond_int64_survive_the_run_config():
    ids = "18175022306032489617,5492683926211921394"  # Flower node IDs are uint64
    config = RunConfig.from_flower({"allowed-nodes": ids})
    assert parse_node_ids(config.allowed_nodes) == [18175022306032489617, 5492683926211921394]
    assert parse_node_ids(RunConfig().allowed_nodes) == []  # empty: every node


@pytest.mark.parametrize("bad", ["a,b", "1,,2", "1 2", "-1"])
def test_malformed_node_ids_are_refused(bad):
    with pytest.raises(ConfigError, match="allowed-nodes"):
        RunConfig.from_flower({"allowed-nodes": bad})
