"""The coordinator says where sites declared different ranges, categories or classes."""

from __future__ import annotations

from common.features import FeatureSpec
from server.contract_check import disagreements
from server.report.html import write_report
from server.run_dir import RunDirectory


def _spec(magnesium: tuple[float, float], colors: list[str], classes: list[str]) -> FeatureSpec:
    features = ["age", "magnesium", *(f"color={c}" for c in colors)]
    lows = [0.0, magnesium[0], *(0.0 for _ in colors)]
    highs = [120.0, magnesium[1], *(1.0 for _ in colors)]
    return FeatureSpec(features, lows, highs, "target", classes)


def test_agreeing_sites_raise_no_warning():
    specs = [_spec((70, 162), ["blue", "red"], ["0", "1"])] * 3
    merged, _ = FeatureSpec.merge(specs)
    assert disagreements(specs, ["a", "b", "c"], merged) == []


def test_different_ranges_categories_and_classes_are_named():
    specs = [
        _spec((80, 136), ["blue", "red"], ["0", "1"]),
        _spec((70, 162), ["blue", "red"], ["0", "1", "2"]),
        _spec((80, 136), ["blue", "red"], ["0", "1"]),
        _spec((80, 136), ["blue", "green", "red"], ["0", "1"]),
    ]
    names = ["a", "b", "c", "d"]
    merged, disagreeing = FeatureSpec.merge(specs)
    assert disagreeing == [3]
    lines = disagreements(specs, names, merged)
    assert lines == [
        "magnesium: sites declare different ranges (a, c: 80..136; b: 70..162); "
        "the federation takes their union 70..162",
        "target (label): sites declare different classes (a, c: [0, 1]; b: [0, 1, 2]); "
        "the federation takes their union [0, 1, 2]",
        "color: sites declare different categories (a, b, c: [blue, red]; d: [blue, green, "
        "red]); excluded as a schema mismatch: d",
    ]
    # The replies' order (Flower's) does not change the lines.
    assert disagreements(specs[::-1], names[::-1], merged) == lines


def test_the_report_shows_the_contract_warnings(tmp_path):
    run_dir = RunDirectory.create(tmp_path / "run")
    run_dir.start({})
    warning = "magnesium: sites declare different ranges (a: 80..136; b: 70..162)"
    run_dir.update_info(contract_warnings=[warning])
    page = write_report(run_dir).read_text()
    assert "feature contract: magnesium: sites declare different ranges" in page
