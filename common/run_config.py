"""A federation run's config, as Flower's run config carries it (hyphenated keys)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from common.errors import EncryptionIncompatibleError
from common.strict_model import StrictModel, validate_as

StrategyName = Literal[
    "fedavg", "fedprox", "fedadam", "fedyogi", "fedmedian", "fedtrimmedavg", "krum", "bulyan"
]

# The architectures ``common.models`` builds (a test keeps the two in step).
ModelName = Literal["logreg", "mlp", "cnn"]

# Strategies whose aggregate is the equally weighted mean of clipped updates, the only
# ones whose one-site sensitivity central DP's noise bounds (docs/privacy/central-dp.md).
CENTRAL_DP_STRATEGIES: tuple[StrategyName, ...] = ("fedavg", "fedprox")

# Strategies whose aggregate is a weighted sum of the updates: the only ones a
# coordinator that holds ciphertexts can form (docs/privacy/he.md).
HE_STRATEGIES: tuple[StrategyName, ...] = ("fedavg", "fedprox")


class RunConfig(StrictModel):
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
    secure_aggregation : SecAgg+; refused, see docs/explanation/privacy-model.md (Flower
        1.42 has it only in the legacy workflow, which this ServerApp's round loop is not).
    he : encrypted aggregation (TenSEAL CKKS): sites send their updates encrypted under
        a key only sites hold, the coordinator sums ciphertexts with the public context
        (``he-public.context`` in the run directory) and sends the encrypted global model
        back; only the strategies in ``HE_STRATEGIES``, no central DP, and no central
        evaluation: the coordinator cannot read the model (docs/privacy/he.md).
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
    he: bool = False
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

    @model_validator(mode="after")
    def _he_needs_a_sum(self) -> RunConfig:
        # Not a ValueError: pydantic passes it through as its own one-line error type.
        if self.he and self.strategy not in HE_STRATEGIES:
            raise EncryptionIncompatibleError(
                f"encrypted aggregation (he) cannot run strategy '{self.strategy}': it needs "
                "the updates in the clear, the coordinator holds only ciphertexts; use one "
                f"of {', '.join(HE_STRATEGIES)}"
            )
        if self.he and self.parent_run:
            raise EncryptionIncompatibleError(
                "encrypted aggregation (he) cannot warm-start from a parent run: the "
                "champion would be compared in the clear"
            )
        if self.he and self.central_dp != "off":
            raise EncryptionIncompatibleError(
                f"encrypted aggregation (he) cannot run central DP ('{self.central_dp}'): "
                "its clipping and noise work on plaintext updates the coordinator cannot read"
            )
        return self

    @classmethod
    def from_flower(cls, run_config: dict[str, Any], source: str = "run config") -> RunConfig:
        return validate_as(cls, dict(run_config), source)

    def to_flower(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)
