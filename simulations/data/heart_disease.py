"""UCI heart disease, four hospitals (FLamby's recipe), read in place from ../shared.

The ``heart_disease`` preset of ``fedlife-sim``: a natural split by hospital
(``--partition natural``), binary label (num > 0), public clinical ranges. The data
set is never copied into the project; without it the preset is a one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from common.errors import ConfigError
from simulations.data.dataset import Dataset

REPO = Path(__file__).resolve().parents[2]

HOSPITALS = ["cleveland", "hungarian", "switzerland", "va"]
COLUMNS = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg",
    "thalach", "exang", "oldpeak", "slope", "ca", "thal", "num",
]  # fmt: skip
DROPPED = ("slope", "ca", "thal")  # FLamby drops these (mostly missing outside Cleveland)
CATEGORIES = {"cp": ["1", "2", "3", "4"], "restecg": ["0", "1", "2"]}  # heart-disease.names
BINARY = ("sex", "fbs", "exang")  # 0/1 codes per heart-disease.names
HIDDEN_ZEROS = ("chol", "trestbps")  # 0 means "not measured" (README.txt of the data set)

# Public ranges: declared from clinical knowledge, never fitted to these rows.
RANGES = {
    # Adult cardiology patients; the clinics saw adults only (names file: age in years).
    "age": (18.0, 100.0, "linear"),
    # Resting systolic blood pressure in mm Hg: 80 (hypotension) to 220 (hypertensive
    # crisis is > 180; AHA blood-pressure categories).
    "trestbps": (80.0, 220.0, "linear"),
    # Serum cholesterol in mg/dl: 100 to 600 spans clinical lab reporting (desirable
    # < 200, very high > 240, familial hypercholesterolaemia up to ~600); right-skewed.
    "chol": (100.0, 600.0, "log"),
    # Maximum heart rate in exercise tests: 60 bpm to 220 (the "220 - age" maximum).
    "thalach": (60.0, 220.0, "linear"),
    # ST depression (mm) induced by exercise: exercise-ECG ST shifts lie within about
    # -3 mm (elevation) to 7 mm; the Swiss and VA files do record negative values.
    "oldpeak": (-3.0, 7.0, "linear"),
}


def find_data_dir() -> Path | None:
    """The folder of processed.{hospital}.data files, or None when it is absent.

    ``$FEDLIFE_HEART_DISEASE_DIR`` first, then ``../shared/datasets/uci_heart_disease``.
    """
    candidates = [
        os.environ.get("FEDLIFE_HEART_DISEASE_DIR"),
        REPO.parent / "shared" / "datasets" / "uci_heart_disease",
    ]
    for candidate in candidates:
        if candidate and all(
            (Path(candidate) / f"processed.{h}.data").is_file() for h in HOSPITALS
        ):
            return Path(candidate)
    return None


def heart_disease() -> Dataset:
    """The four hospitals' rows in one frame, with ``hospital`` as the natural split."""
    folder = find_data_dir()
    if folder is None:
        raise ConfigError(
            "dataset heart_disease needs ../shared/datasets/uci_heart_disease "
            "(or $FEDLIFE_HEART_DISEASE_DIR); it is not there"
        )
    frames = [
        pl.read_csv(
            folder / f"processed.{hospital}.data",
            has_header=False,
            new_columns=COLUMNS,
            null_values="?",
            schema_overrides=dict.fromkeys(COLUMNS, pl.Float64),
        ).with_columns(hospital=pl.lit(hospital))
        for hospital in HOSPITALS
    ]
    frame = (
        pl.concat(frames)
        .drop(DROPPED)
        .with_columns(
            [pl.col(c).replace(0.0, None) for c in HIDDEN_ZEROS]
            + [pl.col(c).cast(pl.Int64).cast(pl.String) for c in CATEGORIES]
            + [(pl.col("num") > 0).cast(pl.Int64)]
        )
    )
    ranges = {c: (low, high) for c, (low, high, _) in RANGES.items()}
    ranges |= dict.fromkeys(BINARY, (0.0, 1.0))
    scales = {c: scale for c, (_, _, scale) in RANGES.items()}
    return Dataset("heart_disease", frame, "num", ranges, scales, CATEGORIES, natural="hospital")
