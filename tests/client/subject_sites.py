"""Sites whose rows belong to identifiable subjects (id, name, visit time), for erasure tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SITE_TOML = """
[site]
name = "{name}"
raw = "raw"
[schema.columns.patient]
type = "text"
role = "id"
[schema.columns.full_name]
type = "text"
role = "pii"
[schema.columns.seen]
type = "datetime"
role = "timestamp"
[schema.columns.age]
type = "float"
min = 0
max = 120
[schema.columns.chol]
type = "float"
min = 100
max = 600
[schema.columns.num]
type = "int"
role = "label"
values = ["0", "1"]
[quality]
min_rows = 5
[privacy]
enabled = {dp}
epsilon_budget = 50.0
[retention]
{retention}
"""


def subject_id(site: int, row: int) -> str:
    return f"S{site}P{row:05d}"


def subject_name(site: int, row: int) -> str:
    return f"Quixotl-{site}-{row:05d}-Vandermeer"


def write_subject_site(
    root: Path,
    site: int,
    rows: int = 60,
    old_rows: int = 0,
    *,
    dp: bool = False,
    retention: str = "",
    folder: str | None = None,
    visits: int = 1,
) -> Path:
    """``root/site-NNN`` with ``raw/data.csv`` and site.toml; return the toml's path.

    The first ``old_rows`` rows were seen in 2010, the rest in 2026. The label
    follows age and cholesterol, so a model can learn it. Each subject has ``visits``
    consecutive rows.
    """
    rng = np.random.default_rng(site)
    site_dir = root / (folder or f"site-{site:03d}")
    (site_dir / "raw").mkdir(parents=True, exist_ok=True)
    age = rng.uniform(20, 90, rows).round(1)
    chol = rng.uniform(150, 400, rows).round(1)
    label = ((age - 55) / 35 + (chol - 275) / 125 + rng.normal(0, 0.3, rows) > 0).astype(int)
    lines = ["patient,full_name,seen,age,chol,num"]
    for i in range(rows):
        year = 2010 if i < old_rows else 2026
        seen = f"{year}-0{1 + i % 9}-{1 + i % 28:02d}T08:30:00"
        lines.append(
            f"{subject_id(site, i // visits)},{subject_name(site, i // visits)},{seen},"
            f"{age[i]},{chol[i]},{label[i]}"
        )
    (site_dir / "raw" / "data.csv").write_text("\n".join(lines) + "\n")
    toml = SITE_TOML.format(
        name=folder or f"site-{site:03d}", dp="true" if dp else "false", retention=retention
    )
    (site_dir / "site.toml").write_text(toml)
    return site_dir / "site.toml"
