"""A site's ``site.toml``: its schema, cleaning, quality, privacy and training policy.

It validates itself; a bad file gets one line naming the file, the key and what was
expected. A federation run's config is ``common.run_config``.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from common.data_classes import DataClass, class_conflict, implied_class
from common.errors import ConfigError
from common.labeling import LabelingSection
from common.retention import RetentionSection
from common.strict_model import StrictModel, validate_as

# The largest per-site epsilon budget a policy may set: past it DP promises nothing.
MAX_EPSILON_BUDGET = 100.0


class ColumnType(StrEnum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CATEGORY = "category"
    DATETIME = "datetime"
    TEXT = "text"


class Role(StrEnum):
    FEATURE = "feature"
    LABEL = "label"
    ID = "id"
    TIMESTAMP = "timestamp"
    SENSITIVE = "sensitive"
    PII = "pii"
    IGNORE = "ignore"


def missing_indicator_name(column: str) -> str:
    """The 0/1 column that marks where ``column`` was missing before imputation."""
    return f"{column}_missing"


class ColumnSpec(StrictModel):
    """One column of a site's schema.

    ``min``/``max`` are the column's public range: declared, not measured. Values
    outside it are outliers; features are scaled by it, linearly or (``scale =
    "log"``, for positive right-skewed measurements) logarithmically. ``values``
    lists a category's (or the label's) allowed values; a row with another value is
    quarantined, and so is a row missing a ``required`` column. ``public`` marks a
    column whose exact statistics the site may release. ``missing_indicator`` adds a
    0/1 feature ``<column>_missing`` set where the value was missing before
    imputation: when missingness itself is informative (a test never done at one
    hospital), imputation would otherwise hide it. ``decimal = ","`` reads a number
    column's decimal commas (``12,29`` is 12.29; ``12.29`` still reads too); without
    it such a value is not a number and its row goes to quarantine. Unset, the
    column takes the schema's ``decimal``. ``class`` is the column's data class
    (``common.data_classes``), declared to agree with its role; unset, the role's.
    """

    type: ColumnType = ColumnType.FLOAT
    role: Role = Role.FEATURE
    min: float | None = None
    max: float | None = None
    values: list[str] | None = None
    missing: list[str] = Field(default_factory=list)
    scale: Literal["linear", "log"] = "linear"
    required: bool = False
    public: bool = False
    missing_indicator: bool = False
    decimal: Literal[".", ","] | None = None
    data_class: DataClass | None = Field(default=None, alias="class")

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self

    @model_validator(mode="after")
    def _class_agrees_with_role(self) -> ColumnSpec:
        if self.data_class is not None:
            conflict = class_conflict(self.role, self.data_class, public=self.public)
            if conflict is not None:
                raise ValueError(conflict)
        return self

    @property
    def classified(self) -> DataClass:
        """The column's class: the declared one, else the one its role implies."""
        return self.data_class or implied_class(self.role, public=self.public)


class SiteSection(StrictModel):
    name: str = Field(min_length=1)
    raw: str = Field(min_length=1, description="file, glob or directory of raw files")
    store: str = "store"
    keep_raw_table: bool = Field(
        default=True,
        description=(
            "write every raw row as text to the store's 'raw' Delta table; false keeps "
            "content-addressed copies of the raw files instead (store/raw_files/<sha256>), "
            "named in each clean version's lineage, which is much faster"
        ),
    )


class SchemaSection(StrictModel):
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    missing: list[str] = Field(default_factory=lambda: ["", "NA", "N/A", "NaN", "nan", "?"])
    header: bool = True
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    decimal: Literal[".", ","] = "."

    def decimal_of(self, column: str) -> str:
        """The decimal separator of ``column``: its own, else the schema's."""
        return self.columns[column].decimal or self.decimal

    @model_validator(mode="after")
    def _one_label(self) -> SchemaSection:
        labels = [n for n, c in self.columns.items() if c.role is Role.LABEL]
        if len(labels) != 1:
            raise ValueError(f"exactly one column needs role 'label', found {labels}")
        return self

    @model_validator(mode="after")
    def _indicators_are_free(self) -> SchemaSection:
        taken = [
            missing_indicator_name(n)
            for n, c in self.columns.items()
            if c.missing_indicator and missing_indicator_name(n) in self.columns
        ]
        if taken:
            raise ValueError(f"missing-indicator names already used by columns: {taken}")
        return self

    @property
    def label(self) -> str:
        return next(n for n, c in self.columns.items() if c.role is Role.LABEL)

    @property
    def features(self) -> list[str]:
        return [n for n, c in self.columns.items() if c.role is Role.FEATURE]

    @property
    def sensitive(self) -> list[str]:
        """Columns across whose groups fairness is measured."""
        return [n for n, c in self.columns.items() if c.role is Role.SENSITIVE]

    def first_with(self, role: Role) -> str | None:
        return next((n for n, c in self.columns.items() if c.role is role), None)


class CleaningSection(StrictModel):
    """How rows are cleaned.

    dedupe : drop exact duplicate rows (true), or also keep one row per id column
        (``"id"``: the latest by the timestamp column, else the last read).
    impute : missing feature values: ``"center"`` keeps them missing in the store and
        training fills them with the federation's center (its DP mean, or the middle
        of the public range); drop the row; fill with ``impute_value``; or, only with
        privacy off, fill with the site column's median, mean or mode, or
        ``"interpolate"`` in time order within each id (then median for what is left).
    outliers : values outside the declared range: ``clip`` to it, ``reject`` the row to
        quarantine, ``none``, or, only with privacy off, ``winsorize`` at the
        ``winsorize_quantiles`` of the site's column.
    """

    dedupe: bool | Literal["id"] = True
    impute: Literal["center", "drop", "median", "mean", "mode", "constant", "interpolate"] = (
        "center"
    )
    impute_value: float = 0.0
    outliers: Literal["clip", "winsorize", "reject", "none"] = "clip"
    winsorize_quantiles: tuple[float, float] = (0.01, 0.99)

    @model_validator(mode="after")
    def _quantiles_are_ordered(self) -> CleaningSection:
        low, high = self.winsorize_quantiles
        if not 0 <= low < high <= 1:
            raise ValueError(f"winsorize_quantiles need 0 <= low < high <= 1, got {low, high}")
        return self


# Cleaning that makes one row's features depend on the site's other rows: DP-SGD bounds
# what one row changes in its own gradient, not in everyone else's features.
ROW_DEPENDENT_IMPUTATION = frozenset({"median", "mean", "mode", "interpolate"})
ROW_DEPENDENT_OUTLIERS = frozenset({"winsorize"})


def row_dependent_cleaning(cleaning: CleaningSection) -> list[str]:
    """The cleaning settings DP cannot account for (empty = every row stands alone)."""
    found = []
    if cleaning.impute in ROW_DEPENDENT_IMPUTATION:
        found.append(f"cleaning.impute = '{cleaning.impute}'")
    if cleaning.outliers in ROW_DEPENDENT_OUTLIERS:
        found.append(f"cleaning.outliers = '{cleaning.outliers}'")
    return found


class QualitySection(StrictModel):
    """The gate a site's clean data must pass before it trains.

    rules : polars SQL conditions every row must meet, e.g. ``"age >= 18"``.
    """

    min_rows: int = Field(default=10, ge=1)
    min_classes: int = Field(default=2, ge=1)
    max_missing_fraction: float = Field(default=0.5, ge=0, le=1)
    rules: list[str] = Field(default_factory=list)
    min_group_size: int = Field(default=10, ge=1)


class PrivacySection(StrictModel):
    """The site's privacy policy.

    release_moments : whether the site answers a federation's request for DP feature
        moments (used to center and scale features).
    moments_budget_share : share of the budget left that the release may cost,
        composed alone by the site's accountant; its noise multiplier is the least
        that fits. A quarter raises training's noise by 2-4 % at budgets 1 to 8; at the
        demo's budget 3 the release's noise multiplier is 5.3, and its centers halve the
        error of a fixed 10's (docs/explanation/privacy-model.md).
    moments_noise_multiplier : a fixed noise multiplier for the release instead (its
        Gaussian noise over its L2 bound); None derives it from the share.
    reproducible_noise : derive DP noise and sampling from the site secret alone, with
        no fresh draw per release, so runs repeat bit for bit. For research
        simulations (``fedlife-sim run --reproducible``) only: two releases of the same
        data then share noise, and their difference reveals it.
    decrypt_final_for_coordinator : under encrypted aggregation, decrypt the run's final
        model for the coordinator's registry when it asks, once per run it trained in. It
        reveals the aggregate (with few sites, little more than their DP-protected
        updates; at worst, should the coordinator send another ciphertext, one
        DP-protected update).
    """

    enabled: bool = True
    epsilon_budget: float = Field(default=3.0, gt=0, le=MAX_EPSILON_BUDGET)
    delta: float = Field(default=1e-5, gt=0, lt=1)
    accountant: Literal["rdp", "prv"] = "rdp"
    release_moments: bool = True
    moments_budget_share: float = Field(default=0.25, gt=0, lt=1)
    moments_noise_multiplier: float | None = Field(default=None, gt=0)
    reproducible_noise: bool = False
    decrypt_final_for_coordinator: bool = False


# Held out for local evaluation when site.toml sets no test_fraction and privacy is on:
# metrics on training rows would tell the coordinator which rows were trained on.
PRIVATE_TEST_FRACTION = 0.1


class TrainingSection(StrictModel):
    """How a site splits its rows.

    test_fraction : share of clean rows held out for local evaluation; unset: 0.1
        (``PRIVATE_TEST_FRACTION``) while privacy is on, else 0 (metrics on every row).
    """

    test_fraction: float | None = Field(default=None, ge=0, lt=1)

    def held_out(self, *, private: bool) -> float:
        """The share of rows held out, for a site whose privacy is on (``private``) or off."""
        if self.test_fraction is not None:
            return self.test_fraction
        return PRIVATE_TEST_FRACTION if private else 0.0


class SiteConfig(StrictModel):
    """A partner site's ``site.toml``; paths in it are relative to the file."""

    site: SiteSection
    schema_: SchemaSection = Field(alias="schema")
    cleaning: CleaningSection = CleaningSection()
    quality: QualitySection = QualitySection()
    privacy: PrivacySection = PrivacySection()
    training: TrainingSection = TrainingSection()
    retention: RetentionSection = RetentionSection()
    labeling: LabelingSection = LabelingSection()
    base_dir: Path = Field(default=Path("."), exclude=True)

    @property
    def schema(self) -> SchemaSection:  # type: ignore[override]
        return self.schema_

    @property
    def store_dir(self) -> Path:
        return (self.base_dir / self.site.store).resolve()

    @property
    def raw_location(self) -> Path:
        return self.base_dir / self.site.raw


def load_site_config(path: str | Path) -> SiteConfig:
    """Read and validate ``site.toml``; raise :class:`ConfigError` naming the key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: site config not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror})") from None
    data["base_dir"] = path.resolve().parent
    return validate_as(SiteConfig, data, str(path))
