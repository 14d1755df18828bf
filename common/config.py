"""Config models: a site's ``site.toml`` and a federation run's config.

Both validate themselves; a bad file gets one line naming the file, the key and
what was expected.
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from common.errors import ConfigError
from common.labeling import LabelingSection
from common.retention import RetentionSection

# The largest per-site epsilon budget a policy may set: past it DP promises nothing.
MAX_EPSILON_BUDGET = 100.0


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ColumnSpec(_Strict):
    """One column of a site's schema.

    ``min``/``max`` are the column's public range: declared, not measured. Values
    outside it are outliers; features are scaled by it, linearly or (``scale =
    "log"``, for positive right-skewed measurements) logarithmically. ``values``
    lists a category's (or the label's) allowed values; a row with another value is
    quarantined, and so is a row missing a ``required`` column. ``public`` marks a
    column whose exact statistics the site may release. ``missing_indicator`` adds a
    0/1 feature ``<column>_missing`` set where the value was missing before
    imputation: when missingness itself is informative (a test never done at one
    hospital), imputation would otherwise hide it.
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

    @model_validator(mode="after")
    def _range_is_ordered(self) -> ColumnSpec:
        if self.min is not None and self.max is not None and not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        return self


class SiteSection(_Strict):
    name: str = Field(min_length=1)
    raw: str = Field(min_length=1, description="file, glob or directory of raw files")
    store: str = "store"


class SchemaSection(_Strict):
    columns: dict[str, ColumnSpec] = Field(min_length=1)
    missing: list[str] = Field(default_factory=lambda: ["", "NA", "N/A", "NaN", "nan", "?"])
    header: bool = True
    delimiter: str = Field(default=",", min_length=1, max_length=1)

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


class CleaningSection(_Strict):
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


class QualitySection(_Strict):
    """The gate a site's clean data must pass before it trains.

    rules : polars SQL conditions every row must meet, e.g. ``"age >= 18"``.
    """

    min_rows: int = Field(default=10, ge=1)
    min_classes: int = Field(default=2, ge=1)
    max_missing_fraction: float = Field(default=0.5, ge=0, le=1)
    rules: list[str] = Field(default_factory=list)
    min_group_size: int = Field(default=10, ge=1)


class PrivacySection(_Strict):
    """The site's privacy policy.

    release_moments : whether the site answers a federation's request for DP feature
        moments (used to center and scale features).
    moments_budget_share : share of the budget left that the release may cost,
        composed alone by the site's accountant; its noise multiplier is the least
        that fits. A quarter raises training's noise by 2-4 % at budgets 1 to 8; at the
        demo's budget 3 the release's noise multiplier is 5.3, and its centers halve the
        error of a fixed 10's (README, "Privacy model").
    moments_noise_multiplier : a fixed noise multiplier for the release instead (its
        Gaussian noise over its L2 bound); None derives it from the share.
    reproducible_noise : derive DP noise and sampling from the site secret alone, with
        no fresh draw per release, so runs repeat bit for bit. For research
        simulations (``fedlife-sim run --reproducible``) only: two releases of the same
        data then share noise, and their difference reveals it.
    """

    enabled: bool = True
    epsilon_budget: float = Field(default=3.0, gt=0, le=MAX_EPSILON_BUDGET)
    delta: float = Field(default=1e-5, gt=0, lt=1)
    accountant: Literal["rdp", "prv"] = "rdp"
    release_moments: bool = True
    moments_budget_share: float = Field(default=0.25, gt=0, lt=1)
    moments_noise_multiplier: float | None = Field(default=None, gt=0)
    reproducible_noise: bool = False


class TrainingSection(_Strict):
    test_fraction: float = Field(default=0.0, ge=0, lt=1)


class SiteConfig(_Strict):
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


StrategyName = Literal[
    "fedavg", "fedprox", "fedadam", "fedyogi", "fedmedian", "fedtrimmedavg", "krum", "bulyan"
]

# The architectures ``common.models`` builds (a test keeps the two in step).
ModelName = Literal["logreg", "mlp", "cnn"]

# Strategies whose aggregate is the equally weighted mean of clipped updates, the only
# ones whose one-site sensitivity central DP's noise bounds (docs/privacy/central-dp.md).
CENTRAL_DP_STRATEGIES: tuple[StrategyName, ...] = ("fedavg", "fedprox")


class RunConfig(_Strict):
    """A federation run, as Flower's run config carries it (hyphenated keys).

    Parameters
    ----------
    num_server_rounds : rounds of training.
    strategy : Flower strategy that aggregates the updates.
    model : architecture from ``common.models``.
    local_epochs, batch_size, learning_rate, momentum : local DP-SGD per round.
    max_grad_norm : per-sample clipping bound of DP-SGD.
    grad_sample_mode : Opacus per-sample gradient mode: 'hooks' (the fastest correct one,
        benchmarks/bench_grad_sample_modes.py), 'functorch', or 'ew' (faster, but it
        fails on the empty batches Poisson sampling draws on small sites).
    min_train_sites : fewest updates a round aggregates; fewer fails the run.
    min_available_sites : sites that must be online before a round starts (a crashed
        site's restart is awaited), up to 120 s, then the run stops; at most
        ``min_train_sites`` (the default, 0) starts as soon as those are online.
    fraction_train : share of connected sites asked to train each round.
    proximal_mu : FedProx's proximal term.
    server_learning_rate : server step of FedAdam / FedYogi.
    num_malicious_sites : sites Krum and Bulyan assume may be malicious.
    central_dp : site-level DP on top of the sites' DP-SGD: 'off', or Flower's
        fixed-clipping wrapper clipping updates on the 'server' or at the 'client';
        the updates are then averaged with equal weights, and only the strategies in
        ``CENTRAL_DP_STRATEGIES`` are accepted (docs/privacy/central-dp.md).
    central_dp_noise_multiplier, central_dp_clipping_norm : of that wrapper.
    central_dp_delta : delta of the site-level epsilon reported per round.
    central_dp_epsilon_budget : the most site-level epsilon the federation may reach
        across all its runs, from the coordinator's central-DP ledger beside the run
        directories; a round that would pass it is not started (0 = no limit, every
        round is still recorded).
    secure_aggregation : SecAgg+; refused, see the README (Flower 1.42 has it only
        in the legacy workflow, which this ServerApp's round loop is not).
    normalization : 'range' maps features by their public ranges (no privacy
        cost); 'centers' also centers them on the federation's mean, from DP sums
        the sites release; 'moments' standardises them with DP means and spreads.
    drift_threshold : PSI above which a site's column is flagged as drifted.
    seed : seeds model initialisation and local training.
    run_dir : where the run writes its outputs ('' = runs/<timestamp>).
    resume : continue the run in ``run_dir`` from its last checkpoint.
    parent_run : warm start: the run directory whose model this run starts from, with
        its feature contract (no new moments release); after the last round both
        models are evaluated at every site in one query (``challenge.json``).
        '' = a fresh model.
    parent_round : the parent's checkpoint to start from (0 = its last).
    observe_only : ``retrain``'s query: every site answers its clean version, histograms
        on ``parent_run``'s bins and epsilon spent (``observation.json``); no training.
    test_data : CSV of held-out rows the server evaluates on ('' = none).
    sites_dir : for ``flwr run`` simulations, the folder of virtual sites.
    label_queue_size : after each round, every site queues this many unlabeled rows
        for its annotators, scored by the new global model (0 = never).
    allowed_nodes : comma-separated node IDs that may take part ('' = every connected
        node); ``fedlife-coord run`` sets the provisioned sites' IDs.
    round_timeout : seconds to wait for the sites' replies in each exchange (0 = wait
        until every site answers or Flower marks it offline); a site that sends nothing
        in time is recorded as a failure and the round goes on without it.
    """

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=lambda n: n.replace("_", "-"),
        populate_by_name=True,
    )

    num_server_rounds: int = Field(default=15, ge=1, le=10_000)
    strategy: StrategyName = "fedavg"
    model: ModelName = "logreg"
    local_epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=16, ge=1)
    learning_rate: float = Field(default=0.5, gt=0)
    momentum: float = Field(default=0.5, ge=0, lt=1)
    max_grad_norm: float = Field(default=1.0, gt=0)
    grad_sample_mode: Literal["hooks", "ew", "functorch"] = "hooks"
    min_train_sites: int = Field(default=2, ge=1)
    min_available_sites: int = Field(default=0, ge=0)
    fraction_train: float = Field(default=1.0, gt=0, le=1)
    proximal_mu: float = Field(default=0.01, ge=0)
    server_learning_rate: float = Field(default=0.1, gt=0)
    num_malicious_sites: int = Field(default=0, ge=0)
    central_dp: Literal["off", "server", "client"] = "off"
    central_dp_noise_multiplier: float = Field(default=1.0, gt=0)
    central_dp_clipping_norm: float = Field(default=1.0, gt=0)
    central_dp_delta: float = Field(default=1e-5, gt=0, lt=1)
    central_dp_epsilon_budget: float = Field(default=0.0, ge=0)
    secure_aggregation: bool = False
    normalization: Literal["range", "centers", "moments"] = "centers"
    drift_threshold: float = Field(default=0.25, gt=0)
    seed: int = 0
    run_dir: str = ""
    resume: bool = False
    parent_run: str = ""
    parent_round: int = Field(default=0, ge=0)
    observe_only: bool = False
    test_data: str = ""
    sites_dir: str = ""
    label_queue_size: int = Field(default=0, ge=0)
    allowed_nodes: str = Field(default="", pattern=r"^[0-9]*(,[0-9]+)*$")
    round_timeout: float = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _no_secure_aggregation(self) -> RunConfig:
        if self.secure_aggregation:
            raise ValueError(
                "SecAgg+ is not available: Flower 1.42 offers it only in the legacy "
                "workflow (SecAggPlusWorkflow), which cannot carry fedlife's round loop "
                "(budget refusals, quality gate, lineage); see the README"
            )
        return self

    @model_validator(mode="after")
    def _central_dp_bounds_the_strategy(self) -> RunConfig:
        if self.central_dp != "off" and self.strategy not in CENTRAL_DP_STRATEGIES:
            raise ValueError(
                f"central DP cannot wrap strategy '{self.strategy}': its aggregate is not "
                "the equally weighted mean of clipped updates, so the noise bounds no "
                f"site's influence; use one of {', '.join(CENTRAL_DP_STRATEGIES)}"
            )
        return self

    @classmethod
    def from_flower(cls, run_config: dict[str, Any], source: str = "run config") -> RunConfig:
        return _validate(cls, dict(run_config), source)

    def to_flower(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


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
    return _validate(SiteConfig, data, str(path))


def _validate(model: type[BaseModel], data: dict[str, Any], source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "(top level)"
        expected = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            expected = "unknown key"
        raise ConfigError(f"{source}: {key}: {expected}") from None
