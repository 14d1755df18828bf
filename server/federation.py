"""One federated run, round by round, over whatever Grid Flower hands the ServerApp.

1. Profile: every site answers a query with the feature contract its schema declares
   and its gate status; the server merges the contracts (sites that disagree are
   excluded) and sends the merged one with every training config.
2. Rounds: the strategy samples sites and aggregates their updates. A site that
   refuses (gate, privacy budget) answers with a reason instead of an update; the
   round goes on while at least ``min-train-sites`` updates arrive.
3. After each round: federated and central evaluation, a checkpoint, one line of
   metrics with the lineage (which sites, which table versions, what epsilon), the
   same metrics as TensorBoard scalars.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from flwr.app import ArrayRecord, ConfigRecord, Message
from flwr.serverapp import Grid

from common import keys
from common.errors import FederationError
from common.features import FeatureSpec
from common.models import build_model
from common.run_config import RunConfig
from common.wire.messages import (
    EvaluateReply,
    TrainReply,
)
from server.central import CentralEvaluation
from server.central_dp import (
    round_noise_multiplier,
    site_level_epsilon,
    with_equal_weights,
    worst_noise_multiplier,
)
from server.central_dp_ledger import CentralDPLedger
from server.fairness import merge_fairness, merge_importance
from server.he_rounds import EVALUATION, EncryptedRounds
from server.lifecycle.challenge import evaluate_beside
from server.lifecycle.warm_start import warm_start
from server.replies import participant, shapes, sorted_replies
from server.report.tensorboard import RoundScalars
from server.round_report import RoundReport, round_record
from server.run_dir import RunDirectory
from server.site_exchange import SiteExchange
from server.site_heads import SiteHeads
from server.site_profile import STATISTICS, agree_on_features, observe_sites, profile
from server.strategies import build_strategy, restore_strategy_state, strategy_state

logger = logging.getLogger("fedlife.federation")


@dataclass
class FederationResult:
    run_id: str
    feature_spec: FeatureSpec
    rounds: list[RoundReport]
    final_state: dict
    stopped_reason: str = ""


RoundObserver = Callable[[RoundReport], None]


class Federation:
    """Runs the profile round and the training rounds of one run.

    Parameters
    ----------
    grid : Flower's Grid to the connected sites.
    config : the run config.
    run_dir : where metrics, checkpoints and the summary go.
    on_round : called with each finished round's report (progress bars).
    """

    def __init__(
        self,
        grid: Grid,
        config: RunConfig,
        run_dir: RunDirectory,
        on_round: RoundObserver | None = None,
    ) -> None:
        self.grid = grid
        self.heads = SiteHeads(run_dir.path.resolve().parent)
        self.sites = SiteExchange(grid, config, heads=self.heads)
        self.config = config
        self.run_dir = run_dir
        self.on_round = on_round or (lambda report: None)
        self.run_id = run_dir.start(config.to_flower())
        self.scalars = RoundScalars(run_dir.path / "tensorboard")
        self.ledger = (
            CentralDPLedger(run_dir.path.resolve().parent, config)
            if config.central_dp != "off"
            else None
        )
        self.he: EncryptedRounds | None = None  # set in run() once the model's size is known

    def run(self) -> FederationResult:
        expected = self.sites_per_round()
        strategy = build_strategy(self.config, expected)
        done = self.run_dir.completed_rounds() if self.config.resume else []
        parent, champion = None, None
        if done:
            spec, arrays = self.restore(done[-1]["round"], strategy)
            if self.config.parent_run:  # a resumed challenger still meets its champion
                _, champion, parent = warm_start(self.config, self.run_dir)
        elif self.config.parent_run:  # warm start: the parent's contract and weights
            # Still asked: it records the sites' purged versions.
            profile(self.sites, self.run_dir, self.run_id)
            spec, champion, parent = warm_start(self.config, self.run_dir)
            arrays = ArrayRecord(champion.to_torch_state_dict())  # champion kept unaltered
        else:
            spec = agree_on_features(self.sites, self.config, self.run_dir, self.run_id)
            model = build_model(
                self.config.model, spec.num_features, spec.num_classes, self.config.seed
            )
            arrays = ArrayRecord(model.state_dict())
        if self.config.he:
            self.he = EncryptedRounds(self.run_dir, arrays, done[-1]["round"] if done else 0)
            self.run_dir.update_info(evaluation=EVALUATION, he_key_id=self.he.key_id)
        if not (done and (self.run_dir.path / STATISTICS).exists()):
            observe_sites(self.sites, self.config, self.run_dir, self.run_id, spec)
        # With HE the coordinator cannot evaluate what it cannot read.
        load = CentralEvaluation.load
        central = None if self.he else load(self.config.test_data, spec, self.config.model)
        reports: list[RoundReport] = []
        stopped = ""
        first = done[-1]["round"] + 1 if done else 1
        for server_round in range(first, self.config.num_server_rounds + 1):
            started = time.monotonic()
            report = RoundReport(server_round, self.config.num_server_rounds)
            train_config = self.round_config(spec, server_round)
            stopped = self.sites_missing(server_round)
            reservation = ""
            if not stopped and self.ledger is not None:
                worst = worst_noise_multiplier(self.config, expected)
                stopped, reservation = self.ledger.reserve(self.run_id, server_round, worst)
            if not stopped:
                replies = self.send(
                    strategy.configure_train, server_round, arrays, train_config, report
                )
                plain = (TrainReply, {"shapes": shapes(arrays)})
                contract, context = self.he.contract() if self.he else plain
                updates = self.sort_replies(replies, report, context, contract, heads=self.heads)
                stopped = _too_few_updates(server_round, updates, self.config.min_train_sites)
            if stopped:
                if reservation:
                    self.ledger.settle(reservation, None)
                report.wall_s = time.monotonic() - started
                self.record(report, stopped=stopped)
                break
            central_dp = self.config.central_dp != "off"
            if central_dp:
                updates = with_equal_weights(updates)
            if self.he:  # the encrypted sum becomes the global model; ``arrays`` stays the template
                aggregated, train_metrics = None, self.he.aggregate(updates)
            else:
                aggregated, train_metrics = strategy.aggregate_train(server_round, updates)
            if aggregated is not None:
                arrays = aggregated
            report.train = dict(train_metrics or {})
            if central_dp:
                released = aggregated is not None
                self.account_central_dp(
                    report, expected, len(updates), reservation, released=released
                )
            self.evaluate(strategy, server_round, arrays, train_config, report)
            if central is not None:
                report.central = central.evaluate(arrays)
            if self.he:
                self.he.checkpoint(server_round)
            else:
                self.run_dir.save_checkpoint(
                    server_round, arrays.to_torch_state_dict(), strategy_state(strategy)
                )
            report.wall_s = time.monotonic() - started
            self.record(report)
            reports.append(report)
            self.on_round(report)
        if parent is not None and champion is not None and reports and not stopped:
            last = reports[-1].round
            config = self.round_config(spec, last)
            evaluate_beside(
                self.sites, strategy, last, arrays, champion, config, self.run_dir, parent
            )
        if self.he:  # encrypted; decrypted for the registry where the sites' policy agrees
            final = self.he.finish(self.sites, self.round_config(spec, 0), arrays, ask=not stopped)
        else:
            final = arrays.to_torch_state_dict()
            self.run_dir.save_final_model(final)
        self.scalars.close()
        return FederationResult(self.run_id, spec, reports, final, stopped)

    def account_central_dp(
        self, report: RoundReport, expected: int, answered: int, reservation: str, *, released: bool
    ) -> None:
        """This round's real noise multiplier, epsilon over every round of the run, and the
        federation's epsilon across runs once the ledger settles the round's reservation."""
        sigma = round_noise_multiplier(self.config, expected, answered)
        earlier = [
            r["train"]["central_dp_noise_multiplier"]
            for r in self.run_dir.completed_rounds()
            if "central_dp_noise_multiplier" in r.get("train", {})
        ]
        report.train["central_dp_noise_multiplier"] = sigma
        report.train["central_dp_epsilon"] = site_level_epsilon(self.config, [*earlier, sigma])
        assert self.ledger is not None  # central DP on: the ledger exists
        report.train["central_dp_federation_epsilon"] = self.ledger.settle(
            reservation, sigma if released else None
        )

    def sites_per_round(self) -> int:
        """How many sites Flower's sampling asks to train each round (as FedAvg samples)."""
        available = len(list(self.grid.get_node_ids()))
        return max(int(available * self.config.fraction_train), self.config.min_train_sites)

    def restore(self, last_round: int, strategy) -> tuple[FeatureSpec, ArrayRecord]:
        """Pick a stopped run up after ``last_round``: its features, model, strategy state.

        The feature contract is reused, not asked again: a new moments round would
        cost the sites privacy a second time.
        """
        spec = FeatureSpec.from_json(self.run_dir.read_json("run.json")["feature_spec"])
        if self.config.he:  # ciphertexts, EncryptedRounds' to load; this is the shapes' template
            model = build_model(self.config.model, spec.num_features, spec.num_classes)
            return spec, ArrayRecord(model.state_dict())
        weights, state = self.run_dir.load_checkpoint(last_round)
        restore_strategy_state(strategy, state)
        return spec, ArrayRecord(weights)

    def sites_missing(self, server_round: int) -> str:
        """Why round ``server_round`` cannot start ('' = it can).

        It starts once ``min-available-sites`` sites are online (Flower's sampling
        itself waits for ``min-train-sites``), e.g. a crashed site restarted by its
        supervisor; after ``site_exchange.NODE_WAIT_S`` the run stops instead.
        """
        if self.config.min_available_sites <= self.config.min_train_sites:
            return ""
        try:
            self.sites.wait_for_sites(self.config.min_available_sites, "min-available-sites")
        except FederationError as error:
            return f"round {server_round}: {error}"
        return ""

    def send(self, configure, server_round, arrays, config, report: RoundReport) -> list[Message]:
        """The strategy's train or evaluate messages, sent; the replies. With encrypted
        aggregation they carry the encrypted global model instead of its arrays."""
        he = self.he
        messages = configure(server_round, he.arrays(arrays) if he else arrays, config, self.grid)
        return self.sites.exchange(he.attach(messages) if he else list(messages), report.failures)

    def round_config(self, spec: FeatureSpec, server_round: int) -> ConfigRecord:
        c = self.config
        record = ConfigRecord(
            {
                keys.EXPLAIN: server_round == c.num_server_rounds,  # attributions: last round
                keys.RUN_ID: self.run_id,
                keys.NUM_ROUNDS: c.num_server_rounds,
                keys.SEED: c.seed,
                keys.MODEL: c.model,
                keys.FEATURE_SPEC: spec.to_json(),
                keys.LOCAL_EPOCHS: c.local_epochs,
                keys.BATCH_SIZE: c.batch_size,
                keys.LEARNING_RATE: c.learning_rate,
                keys.MOMENTUM: c.momentum,
                keys.MAX_GRAD_NORM: c.max_grad_norm,
                keys.GRAD_SAMPLE_MODE: c.grad_sample_mode,
                keys.LABEL_QUEUE_SIZE: c.label_queue_size,
            }
        )
        return self.he.round_config(record) if self.he else record

    @staticmethod
    def sort_replies(
        replies: list[Message],
        report: RoundReport,
        context: dict | None = None,
        contract=TrainReply,
        heads: SiteHeads | None = None,
    ) -> list[Message]:
        """Keep the valid updates (``TrainReply``); record refusals, invalid replies
        and failures in ``report``.

        Updates are kept in site order, not arrival order: float sums depend on the
        order, and the same seed must give the same model however the sites raced.
        """
        updates = []
        for reply in sorted_replies(replies, contract, context, report, heads=heads):
            updates.append(reply.message)
            report.participants.append(participant(reply.message))
        return updates

    def evaluate(self, strategy, server_round, arrays, config, report: RoundReport) -> None:
        replies = self.send(strategy.configure_evaluate, server_round, arrays, config, report)
        results, fairness, importance = [], {}, {}
        for valid in sorted_replies(replies, EvaluateReply, None, report, heads=self.heads):
            reply, site = valid.message, valid.site
            report.per_site[site] = dict(reply.content[keys.METRICS])
            if keys.ASSESSMENT in reply.content:
                assessment = reply.content[keys.ASSESSMENT]
                fairness[site] = str(assessment[keys.FAIRNESS])
                importance[site] = (
                    str(assessment[keys.IMPORTANCE]),
                    int(assessment[keys.NUM_EXAMPLES]),
                )
            results.append(reply)
        if results:
            report.federated = dict(strategy.aggregate_evaluate(server_round, results) or {})
        report.fairness = merge_fairness(fairness)
        report.importance = merge_importance(importance)

    def record(self, report: RoundReport, stopped: str = "") -> None:
        self.run_dir.append_round(round_record(report, stopped))
        self.scalars(report)


def _too_few_updates(server_round: int, updates: list[Message], needed: int) -> str:
    if len(updates) >= needed:
        return ""
    return f"round {server_round}: {len(updates)} update(s), fewer than min-train-sites={needed}"
