"""Site and run configs: valid files load, bad ones name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.config import ColumnType, Role, load_site_config
from common.errors import ConfigError
from common.run_config import RunConfig

VALID = """
[site]
name = "clinic-a"
raw = "raw/data.csv"

[schema]
missing = ["", "NA"]

[schema.columns.age]
type = "int"
min = 0
max = 120
missing = ["-9"]

[schema.columns.glucose]
type = "float"
min = 1.0
max = 600.0
scale = "log"

[schema.columns.outcome]
type = "int"
role = "label"
values = ["0", "1"]

[privacy]
epsilon_budget = 5.0
delta = 1e-6
"""


def write(tmp_path: Path, text: str, name: str = "site.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_valid_site_config_loads(tmp_path):
    config = load_site_config(write(tmp_path, VALID))

    assert config.site.name == "clinic-a"
    assert config.schema.label == "outcome"
    assert config.schema.features == ["age", "glucose"]
    assert config.schema.columns["age"].type is ColumnType.INT
    assert config.schema.columns["age"].missing == ["-9"]
    assert config.schema.columns["glucose"].scale == "log"
    assert config.schema.columns["outcome"].role is Role.LABEL
    assert config.privacy.epsilon_budget == 5.0
    assert config.privacy.delta == 1e-6
    # Defaults of sections the file leaves out.
    assert config.cleaning.impute == "center"  # the only data-free default
    assert config.quality.min_rows == 10
    # Paths are relative to the file.
    assert config.raw_location == tmp_path.resolve() / "raw" / "data.csv"
    assert config.store_dir == tmp_path.resolve() / "store"


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, VALID.replace('name = "clinic-a"', 'name = "clinic-a"\ncolour = "red"'))

    with pytest.raises(ConfigError) as caught:
        load_site_config(path)

    message = str(caught.value)
    assert str(path) in message
    assert "site.colour" in message
    assert "unknown key" in message


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ("epsilon_budget = 5.0", "epsilon_budget = -1", "privacy.epsilon_budget"),
        ("delta = 1e-6", "delta = 2", "privacy.delta"),
    ],
)
def test_bad_value_names_the_key(tmp_path, old, new, key):
    path = write(tmp_path, VALID.replace(old, new))

    with pytest.raises(ConfigError) as caught:
        load_site_config(path)

    assert str(path) in str(caught.value)
    assert key in str(caught.value)


def test_error_message_is_one_line(tmp_path):
    path = write(tmp_path, VALID.replace("delta = 1e-6", "delta = 2"))

    with pytest.raises(ConfigError) as caught:
        load_site_config(path)

    assert "\n" not in str(caught.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "site.toml"

    with pytest.raises(ConfigError, match="not found") as caught:
        load_site_config(path)

    assert str(path) in str(caught.value)


def test_file_that_is_not_toml(tmp_path):
    path = write(tmp_path, "[site\nname = clinic-a\n")

    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_site_config(path)

    assert str(path) in str(caught.value)


def test_binary_file_is_not_toml(tmp_path):
    path = tmp_path / "site.toml"
    path.write_bytes(b"\xff\xfe\x00garbage")

    with pytest.raises(ConfigError) as caught:
        load_site_config(path)

    assert str(path) in str(caught.value)


@pytest.mark.parametrize("labels", [0, 2])
def test_schema_needs_exactly_one_label(tmp_path, labels):
    text = VALID.replace('role = "label"\n', "")  # no label column
    if labels == 2:
        text = VALID.replace("max = 120\n", 'max = 120\nrole = "label"\n')
    path = write(tmp_path, text)

    with pytest.raises(ConfigError, match="exactly one column") as caught:
        load_site_config(path)

    assert "schema" in str(caught.value)
    assert str(path) in str(caught.value)


def test_column_range_must_be_ordered(tmp_path):
    path = write(tmp_path, VALID.replace("max = 120", "max = -5"))

    with pytest.raises(ConfigError, match="schema.columns.age"):
        load_site_config(path)


def test_run_config_accepts_hyphenated_flower_keys():
    config = RunConfig.from_flower(
        {"num-server-rounds": 3, "strategy": "fedprox", "local-epochs": 2, "proximal-mu": 0.1}
    )

    assert config.num_server_rounds == 3
    assert config.strategy == "fedprox"
    assert config.local_epochs == 2
    assert config.proximal_mu == 0.1
    assert config.batch_size == 16  # default
    assert config.to_flower()["num-server-rounds"] == 3


def test_run_config_rejects_unknown_strategy():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_flower({"strategy": "fedmagic"}, source="pyproject.toml")

    assert "pyproject.toml" in str(caught.value)
    assert "strategy" in str(caught.value)


def test_run_config_rejects_unknown_key():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_flower({"num-server-rounds": 2, "nmu-rounds": 5})

    assert "nmu-rounds" in str(caught.value)
    assert "unknown key" in str(caught.value)


def test_run_config_rejects_out_of_range_value():
    with pytest.raises(ConfigError, match="num-server-rounds"):
        RunConfig.from_flower({"num-server-rounds": 0})


def test_run_config_refuses_secure_aggregation_saying_why():
    with pytest.raises(ConfigError) as caught:
        RunConfig.from_flower({"secure-aggregation": True}, source="run config")

    message = str(caught.value)
    assert "SecAgg+" in message and "legacy workflow" in message and "README" in message
    assert "\n" not in message


def test_run_config_rejects_an_unknown_central_dp_mode():
    with pytest.raises(ConfigError, match="central-dp"):
        RunConfig.from_flower({"central-dp": "both"})
