"""Budget checks use Opacus's RDP analysis without loading the rest of Opacus."""

from __future__ import annotations

import json
import subprocess
import sys

from opacus.accountants import RDPAccountant

from common.rdp_orders import RDP_ORDERS

HISTORY = [(1.1, 0.05, 40), (0.8, 0.02, 15), (1.1, 0.05, 10)]
DELTA = 1e-5


def test_composing_a_budget_loads_no_more_of_opacus_and_agrees_with_its_accountant():
    probe = (
        "import json, sys\n"
        "from client.privacy.ledger import compose_epsilon\n"
        f"epsilon = compose_epsilon({HISTORY!r}, {DELTA!r})\n"
        "print(json.dumps([epsilon, sorted(m for m in sys.modules if m.split('.')[0] in "
        "('opacus', 'torch', 'sympy'))]))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    epsilon, loaded = json.loads(result.stdout)

    accountant = RDPAccountant()
    accountant.history = list(HISTORY)
    assert loaded == []
    assert epsilon == accountant.get_epsilon(delta=DELTA, alphas=list(RDP_ORDERS))
