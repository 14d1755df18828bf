"""Empirical privacy audit: membership inference against fedlife's final global model.

Trains the same federation without DP and with DP at epsilon = 1 per site (real
prepare, Flower simulation on Ray, Opacus DP-SGD, ledger epsilon), attacks mislabeled
canaries with a loss threshold, and sets the empirical epsilon lower bound beside the
accountant's. Exits non-zero if the lower bound passes the accountant's epsilon (a
privacy bug) or if a must-hold fails: without DP the attack AUC must be clearly above
0.5 (>= 0.6); with DP its AUC within 0.05 of 0.5.

    .venv/bin/python benchmarks/bench_privacy_audit.py [--out DIR] [--canaries 600]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.audit.experiment import audit, print_audit  # noqa: E402
from simulations.audit.spec import AuditSpec  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="", help="new folder for the runs (default: a temp dir)")
    parser.add_argument("--canaries", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = args.out or str(Path(tempfile.mkdtemp(prefix="fedlife-audit-")) / "audit")
    started = time.monotonic()
    results = audit(AuditSpec(out=out, canaries=args.canaries, seed=args.seed, epsilon=1.0))
    wall = time.monotonic() - started
    print_audit(results)
    figures = {
        "auc_no_dp": round(results["no_dp"]["auc"], 4),
        "auc_eps1": round(results["dp"]["auc"], 4),
        "empirical_epsilon_lower_bound_no_dp": round(
            results["no_dp"]["empirical_epsilon_lower_bound"], 4
        ),
        "empirical_epsilon_lower_bound_eps1": round(
            results["dp"]["empirical_epsilon_lower_bound"], 4
        ),
        "accountant_epsilon_eps1": round(results["dp"]["accountant_epsilon"], 4),
        "test_accuracy_no_dp": results["no_dp"]["test_accuracy"],
        "test_accuracy_eps1": results["dp"]["test_accuracy"],
        "canaries": args.canaries,
        "wall_s": round(wall, 1),
    }
    failures = []
    if figures["empirical_epsilon_lower_bound_eps1"] > figures["accountant_epsilon_eps1"]:
        failures.append("empirical epsilon lower bound above the accountant's epsilon: privacy bug")
    if figures["auc_no_dp"] < 0.6:
        failures.append(f"attack AUC without DP {figures['auc_no_dp']} is not clearly above 0.5")
    if abs(figures["auc_eps1"] - 0.5) > 0.05:
        failures.append(f"attack AUC at epsilon 1 {figures['auc_eps1']} is not within 0.05 of 0.5")
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    print(json.dumps(figures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
